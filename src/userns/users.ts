// --user UID[:GID] and --group-add: numbers as they are, names looked up in the rootfs'
// /etc/passwd and /etc/group (read without following symlinks out of the rootfs).
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { fieldOf } from './fields.js';

export interface User {
  uid: number;
  gid: number;
  /** Supplementary groups: the user's in the rootfs' /etc/group, then --group-add. */
  groups: number[];
}

const MAX_FILE = 1 << 20;
/** What the plan's setgroups op carries. */
const MAX_GROUPS = 64;

/** The entries of the files read last, by path, with what identifies that version of the file. */
const known = new Map<string, { key: string; entries: string[][] }>();

const versionOf = (st: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }) =>
  `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/**
 * The entries of a file under ROOTFS/etc, none when it is absent, a symlink or not a regular file. Parsed
 * again only when the file is another (device, inode) or was changed (size, mtime, ctime): a sandbox per
 * second from one rootfs reads its passwd and group once.
 */
function readEntries(rootfs: string, name: string): string[][] {
  const etc = rootfs === 'host' ? '/etc' : `${rootfs}/etc`;
  const path = `${etc}/${name}`;
  try {
    if (!lstatSync(etc).isDirectory()) return [];
    const seen = known.get(path);
    if (seen) {
      const st = lstatSync(path, { bigint: true });
      if (st.isFile() && versionOf(st) === seen.key) return seen.entries;
    }
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd, { bigint: true });
      if (!st.isFile()) return [];
      const buf = Buffer.alloc(Math.min(Number(st.size), MAX_FILE));
      const n = readSync(fd, buf, 0, buf.length, 0);
      const parsed = entries(buf.subarray(0, n).toString('utf8'));
      if (known.size > 64) known.clear();
      known.set(path, { key: versionOf(st), entries: parsed });
      return parsed;
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
}

function entries(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const isId = (s: string) => /^\d{1,10}$/.test(s) && Number(s) < 0xffffffff;

function fail(flag: string, message: string): never {
  throw new NsboxError(`{field}: ${message}`, { step: flag, field: fieldOf(flag) });
}

function groupId(spec: string, groups: string[][], flag: string, rootfs: string): number {
  if (isId(spec)) return Number(spec);
  const g = groups.find((e) => e[0] === spec);
  if (!g || !isId(g[2] ?? '')) fail(flag, `no group ${spec} in ${rootfs === 'host' ? '' : rootfs}/etc/group`);
  return Number(g[2]);
}

/** `UID`, `UID:GID`, `NAME` or `NAME:GROUP`; without a group, the user's own (or 0, as Docker does). */
export function resolveUser(
  user: number | string | undefined,
  groupAdd: (number | string)[] = [],
  rootfs: string,
): User {
  const text = user === undefined ? '0' : String(user);
  const [u, g, ...rest] = text.split(':');
  if (u === '' || rest.length > 0 || g === '')
    fail('user', `invalid user: ${text} (expected UID[:GID] or NAME[:GROUP])`);
  const passwd = readEntries(rootfs, 'passwd');
  const groups = readEntries(rootfs, 'group');
  let entry = passwd.find((e) => e[0] === u);
  if (isId(u)) entry = passwd.find((e) => e[2] === u);
  else if (!entry || !isId(entry[2] ?? ''))
    fail('user', `no user ${u} in ${rootfs === 'host' ? '' : rootfs}/etc/passwd`);
  const uid = isId(u) ? Number(u) : Number(entry![2]);
  const gid =
    g !== undefined ? groupId(g, groups, 'user', rootfs) : entry && isId(entry[3] ?? '') ? Number(entry[3]) : 0;
  const own = entry
    ? groups.filter((e) => (e[3] ?? '').split(',').includes(entry![0]) && isId(e[2] ?? '')).map((e) => Number(e[2]))
    : [];
  const added = groupAdd.map((x) => groupId(String(x), groups, 'group-add', rootfs));
  const all = [...new Set([...own, ...added])];
  if (all.length > MAX_GROUPS) fail('group-add', `at most ${MAX_GROUPS} supplementary groups, got ${all.length}`);
  return { uid, gid, groups: all };
}
