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

/** A file under ROOTFS/etc as text, or '' when it is absent, a symlink or not a regular file. */
function readEtc(rootfs: string, name: string): string {
  const etc = rootfs === 'host' ? '/etc' : `${rootfs}/etc`;
  try {
    if (!lstatSync(etc).isDirectory()) return '';
    const fd = openSync(`${etc}/${name}`, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return '';
      const buf = Buffer.alloc(Math.min(st.size, MAX_FILE));
      const n = readSync(fd, buf, 0, buf.length, 0);
      return buf.subarray(0, n).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
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
  const passwd = entries(readEtc(rootfs, 'passwd'));
  const groups = entries(readEtc(rootfs, 'group'));
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
