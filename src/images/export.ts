// `nsbox export`: a running container's root as a tar stream. The container is hostile: its tree
// is read through /proc/PID/root with every path resolved inside that root (openat2
// RESOLVE_IN_ROOT), so a symlink swapped in mid-walk cannot make us read a host file; other mounts
// inside (/proc, /sys, /dev, volumes) are left out, as docker leaves them out.
import {
  closeSync,
  constants as C,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  type Stats,
} from 'node:fs';
import { Readable } from 'node:stream';
import { Header, Pax } from 'tar';
import { fsops } from '../native.js';
import { paxXattrHeader } from './pax.js';

const O_PATH = 0o10000000;
const BLOCK = 512;

/** Mount points inside a process's root, other than the root itself (from its mountinfo). */
function innerMounts(pid: number): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const f = line.split(' ');
    const mp = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (mp && mp !== '/') out.add(mp.slice(1));
  }
  return out;
}

/** An entry's extended attributes; none where they cannot be read (values over 4 KiB included). */
function xattrsOf(fd: number): [string, Buffer][] {
  try {
    const out: [string, Buffer][] = [];
    for (const name of fsops.flistxattr(fd)) {
      const v = fsops.fgetxattr(fd, name);
      if (v) out.push([name, v]);
    }
    return out;
  } catch {
    return [];
  }
}

function header(
  path: string,
  st: Stats,
  type: string,
  extra: { linkpath?: string; size?: number; xattrs?: [string, Buffer][] } = {},
): Buffer {
  const data = {
    path,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: extra.size ?? 0,
    mtime: st.mtime,
    linkpath: extra.linkpath,
    devmaj: Math.floor(st.rdev / 256) & 0xfff,
    devmin: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00),
  } as never;
  const b = Buffer.alloc(BLOCK);
  // A long path or link target goes in a pax header before the entry (the ustar fields truncate),
  // with the xattrs (SCHILY.xattr.NAME records) when there are some.
  const long = new Header(data).encode(b, 0);
  if (extra.xattrs?.length) return Buffer.concat([paxXattrHeader(path, extra.linkpath, extra.xattrs), b]);
  if (!long) return b;
  return Buffer.concat([new Pax(data).encode(), b]);
}

/** The tar of `pid`'s root as a stream (generated as it is read). */
export function exportRoot(pid: number): Readable {
  const root = openSync(`/proc/${pid}/root`, O_PATH | C.O_DIRECTORY);
  const skip = innerMounts(pid);
  const links = new Map<string, string>();
  function* walk(dir: string): Generator<Buffer> {
    const fd = fsops.openIn(root, dir || '.', C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
    let names: string[];
    try {
      names = readdirSync(`/proc/self/fd/${fd}`).sort();
    } finally {
      closeSync(fd);
    }
    for (const name of names) {
      const rel = dir ? `${dir}/${name}` : name;
      if (skip.has(rel)) continue;
      let f: number;
      try {
        f = fsops.openIn(root, rel, O_PATH | C.O_NOFOLLOW);
      } catch {
        continue; // gone meanwhile
      }
      let st: Stats;
      try {
        st = fstatSync(f);
        const xattrs = xattrsOf(f);
        if (st.isSymbolicLink()) {
          yield header(rel, st, 'SymbolicLink', { linkpath: readlinkIn(root, rel), xattrs });
        } else if (st.isDirectory()) {
          yield header(`${rel}/`, st, 'Directory', { xattrs });
          yield* walk(rel);
        } else if (st.isFile()) {
          const key = `${st.dev}:${st.ino}`;
          if (st.nlink > 1 && links.has(key)) yield header(rel, st, 'Link', { linkpath: links.get(key) });
          else {
            if (st.nlink > 1) links.set(key, rel);
            yield* file(rel, st, xattrs);
          }
        } else {
          const type = st.isCharacterDevice()
            ? 'CharacterDevice'
            : st.isBlockDevice()
              ? 'BlockDevice'
              : st.isFIFO()
                ? 'FIFO'
                : null;
          if (type) yield header(rel, st, type, { xattrs });
        }
      } finally {
        closeSync(f);
      }
    }
  }
  function* file(rel: string, st: Stats, xattrs: [string, Buffer][]): Generator<Buffer> {
    const fd = fsops.openIn(root, rel, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
    try {
      const size = fstatSync(fd).size;
      yield header(rel, st, 'File', { size, xattrs });
      const buf = Buffer.alloc(1 << 20);
      let left = size;
      while (left > 0) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, left), null);
        if (n === 0) break; // shrank meanwhile: padded with zeros below
        yield Buffer.from(buf.subarray(0, n));
        left -= n;
      }
      if (left > 0) yield Buffer.alloc(left);
      if (size % BLOCK) yield Buffer.alloc(BLOCK - (size % BLOCK));
    } finally {
      closeSync(fd);
    }
  }
  function* all(): Generator<Buffer> {
    try {
      yield* walk('');
      yield Buffer.alloc(2 * BLOCK);
    } finally {
      closeSync(root);
    }
  }
  return Readable.from(all(), { objectMode: false });
}

function readlinkIn(root: number, rel: string): string {
  const slash = rel.lastIndexOf('/');
  const parent = fsops.openIn(root, slash < 0 ? '.' : rel.slice(0, slash), O_PATH | C.O_DIRECTORY);
  try {
    return fsops.readlinkAt(parent, rel.slice(slash + 1));
  } finally {
    closeSync(parent);
  }
}
