// Applying one layer (a tar stream, maybe gzipped) into an empty directory, in overlayfs' format:
// a whiteout `.wh.NAME` becomes a 0/0 character device, `.wh..wh..opq` an opaque-directory xattr.
// Every archive is hostile: each entry is made by name under a parent resolved inside the layer
// root (openat2 RESOLVE_IN_ROOT), never by following a joined path. node-tar only reads the stream.
import { closeSync, constants as C, openSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { NsboxError } from '../errors.js';
import { fsops as fs } from '../native.js';
import { PaxScanner } from './pax.js';
import { zstdInflater } from './zstd.js';

export interface ApplyOptions {
  /** At most this many entries (default 1,000,000). */
  maxEntries?: number;
  /** At most this many bytes of file content, uncompressed (default 64 GiB). */
  maxBytes?: number;
  /** Called for entries skipped on purpose (device nodes when not root). */
  warn?: (message: string) => void;
  /** What the layer is called in errors (its digest). */
  name?: string;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar: the layer's diff_id. */
  diffId: string;
  /** Bytes of file content. */
  size: number;
  entries: number;
}

const O_PATH = 0o10000000;
const AT_REMOVEDIR = 0x200;
const S_IFCHR = 0o020000,
  S_IFBLK = 0o060000,
  S_IFIFO = 0o010000,
  S_IFMT = 0o170000,
  S_IFDIR = 0o040000;
const WH = '.wh.',
  OPAQUE = '.wh..wh..opq';
const DEFAULT_MAX_ENTRIES = 1_000_000,
  DEFAULT_MAX_BYTES = 64 * 2 ** 30;

/** An entry's path as components inside the root; '..' that would climb out of it is refused. */
export function cleanPath(p: string, what = 'entry'): string[] {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw new NsboxError(`${what} escapes the layer: ${p}`, { step: 'layer' });
      out.pop();
    } else out.push(c);
  }
  return out;
}

/** Like cleanPath, but '..' stops at the root, as the kernel resolves a symlink's target in it. */
function cleanPathIn(p: string): string[] {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '..') out.pop();
    else if (c !== '' && c !== '.') out.push(c);
  }
  return out;
}

/** Peeks at the first bytes: gzip and zstd are inflated, anything else is taken as a plain tar. */
function decompress(input: Readable, name: string): Readable {
  let decided = false;
  let inner: Transform | null = null;
  const sniff = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const write = () => {
        if (!inner) return cb(null, chunk);
        if (!inner.write(chunk)) inner.once('drain', () => cb());
        else cb();
      };
      if (decided) return write();
      decided = true;
      const use = (t: Transform, kind: string) => {
        inner = t;
        t.on('data', (d: Buffer) => this.push(d));
        t.on('error', (e) =>
          this.destroy(
            e instanceof NsboxError
              ? e
              : new NsboxError(`layer ${name}: bad ${kind} data: ${e.message}`, { step: 'layer' }),
          ),
        );
      };
      if (chunk[0] === 0x28 && chunk[1] === 0xb5 && chunk[2] === 0x2f && chunk[3] === 0xfd) {
        zstdInflater(name).then((z) => {
          use(z, 'zstd');
          write();
        }, cb);
        return;
      }
      if (chunk[0] === 0x1f && chunk[1] === 0x8b) use(createGunzip(), 'gzip');
      write();
    },
    flush(cb) {
      if (!inner) return cb();
      inner.once('end', () => cb());
      inner.end();
    },
  });
  input.on('error', (e) => sniff.destroy(e));
  return input.pipe(sniff);
}

interface Times {
  a: [number, number];
  m: [number, number];
}
const split = (d: Date): [number, number] => {
  const ms = d.getTime();
  return [Math.floor(ms / 1000), (((ms % 1000) + 1000) % 1000) * 1e6];
};

/** Applies a layer into `dir` (empty, ours). Resolves with its diff_id once every entry is in place. */
export function applyLayer(input: Readable, dir: string, o: ApplyOptions = {}): Promise<ApplyResult> {
  const name = o.name ?? 'layer';
  const maxEntries = o.maxEntries ?? DEFAULT_MAX_ENTRIES,
    maxBytes = o.maxBytes ?? DEFAULT_MAX_BYTES;
  const root = process.getuid?.() === 0;
  const rootFd = openSync(dir, C.O_DIRECTORY | C.O_NOFOLLOW | O_PATH);
  const hash = createHash('sha256');
  const dirTimes: [string, Times][] = [];
  let entries = 0,
    bytes = 0,
    failed: Error | null = null;
  const pax = new PaxScanner();
  const skipped = new Map<string, { n: number; example: string }>();

  const fail = (e: unknown, path?: string): void => {
    if (failed) return;
    const msg = e instanceof NsboxError ? e.message : `${path ?? ''}: ${(e as Error).message}`;
    failed =
      e instanceof NsboxError
        ? e
        : new NsboxError(`layer ${name}: cannot apply ${msg}`, {
            step: 'layer',
            code: (e as NodeJS.ErrnoException).code,
          });
  };

  /**
   * O_PATH fd of the directory `parts` inside the root, made (0755) where missing. A dangling
   * symlink on the way is followed inside the root: its target is made in its place, as docker does.
   */
  const openParent = (parts: string[]): number => {
    try {
      return fs.openIn(rootFd, parts.join('/') || '.', O_PATH | C.O_DIRECTORY);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (let hops = 0; hops < 40; hops++) {
      const next = walk(parts);
      if (typeof next === 'number') return next;
      parts = next;
    }
    throw new NsboxError(`layer ${name}: too many levels of symbolic links under ${parts.join('/')}`, {
      step: 'layer',
    });
  };
  /** One walk creating missing directories; the rewritten path when a dangling symlink is met. */
  const walk = (parts: string[]): number | string[] => {
    let fd = fs.openIn(rootFd, '.', O_PATH | C.O_DIRECTORY);
    try {
      for (let i = 0; i < parts.length; i++) {
        const prefix = parts.slice(0, i + 1).join('/');
        let next: number;
        try {
          next = fs.openIn(rootFd, prefix, O_PATH | C.O_DIRECTORY);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          const st = fs.statAt(fd, parts[i]);
          if (st && (st.mode & S_IFMT) === 0o120000) {
            const target = fs.readlinkAt(fd, parts[i]);
            const head = target.startsWith('/') ? [] : parts.slice(0, i);
            return [...cleanPathIn([...head, target].join('/')), ...parts.slice(i + 1)];
          }
          fs.mkdirAt(fd, parts[i], 0o755);
          next = fs.openIn(rootFd, prefix, O_PATH | C.O_DIRECTORY);
        }
        closeSync(fd);
        fd = next;
      }
      return fd;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  };

  /** Makes room for a new entry: a non-directory of the same name (an earlier entry) is removed. */
  const clear = (parent: number, base: string, keepDir: boolean, path: string): boolean => {
    const st = fs.statAt(parent, base);
    if (!st) return false;
    if ((st.mode & S_IFMT) === S_IFDIR) {
      if (keepDir) return true;
      try {
        fs.unlinkAt(parent, base, AT_REMOVEDIR);
        return false;
      } catch {
        throw new NsboxError(`layer ${name}: entry ${path} replaces a non-empty directory`, { step: 'layer' });
      }
    }
    fs.unlinkAt(parent, base);
    return false;
  };

  const owner = (fd: number, base: string, e: ReadEntry): void => {
    if (root) fs.lchownAt(fd, base, e.uid ?? 0, e.gid ?? 0);
  };
  const times = (e: ReadEntry): Times => {
    const m = e.mtime ?? new Date(0);
    return { a: split(e.atime ?? m), m: split(m) };
  };
  const setTimes = (fd: number, base: string, t: Times): void => fs.utimensAt(fd, base, ...t.a, ...t.m);

  /** The pax header's xattrs of this entry, checked to belong to it (by its header checksum). */
  const xattrsOf = (e: ReadEntry): [string, Buffer][] => {
    const x = pax.queue.shift();
    if (!pax.any) return [];
    if (!x || x.cksum !== (e.header as unknown as { cksum?: number }).cksum)
      throw new NsboxError(`layer ${name}: cannot match the pax extended attributes to ${e.path}`, { step: 'layer' });
    return x.xattrs;
  };
  /**
   * Sets xattrs on `fd` (after chown, which clears security.capability). overlay's own markers are
   * never taken from an archive; rootless, trusted.* and security.* cannot be set. What cannot be
   * applied (so, or where the filesystem has no xattrs) is skipped with one warning, as
   * containers/storage skips ENOTSUP, and EPERM in a user namespace; any other error fails.
   */
  const setXattrs = (fd: number, list: [string, Buffer][], path: string): void => {
    for (const [key, value] of list) {
      let why: string | null = null;
      if (/^(trusted|user)\.overlay\./.test(key)) why = "overlay's own attributes are not taken from a layer";
      else if (!root && /^(trusted|security)\./.test(key)) why = 'only root sets trusted.* and security.*';
      else {
        try {
          fs.fsetxattr(fd, key, value);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') why = 'not supported by the filesystem';
          else if (code === 'EPERM' && !root) why = 'not permitted';
          else throw err;
        }
      }
      if (why) {
        const s = skipped.get(why) ?? { n: 0, example: `${key} on ${path}` };
        s.n++;
        skipped.set(why, s);
      }
    }
  };
  /** xattrs of an entry that has no open fd of its own (symlink, device, hard link). */
  const setXattrsAt = (parent: number, base: string, list: [string, Buffer][], path: string): void => {
    if (list.length === 0) return;
    const fd = fs.openAt(parent, base, O_PATH | C.O_NOFOLLOW);
    try {
      setXattrs(fd, list, path);
    } finally {
      closeSync(fd);
    }
  };

  const onEntry = (e: ReadEntry): void => {
    if (failed) return void e.resume();
    const path = String(e.path);
    try {
      if (++entries > maxEntries)
        throw new NsboxError(`layer ${name} has more than ${maxEntries} entries (refused as an archive bomb)`, {
          step: 'layer',
        });
      const parts = cleanPath(path);
      const mode = (e.mode ?? 0o644) & 0o7777;
      const xattrs = xattrsOf(e);
      if (parts.length === 0) {
        // The root itself: metadata only; it never changes type.
        if (e.type !== 'Directory')
          throw new NsboxError(`layer ${name}: the root entry ${path} is a ${e.type}, not a directory`, {
            step: 'layer',
          });
        owner(rootFd, '', e);
        fs.fchmodFd(rootFd, mode);
        setXattrs(rootFd, xattrs, path);
        dirTimes.push(['.', times(e)]);
        return void e.resume();
      }
      const base = parts[parts.length - 1];
      const parent = openParent(parts.slice(0, -1));
      try {
        if (base.startsWith(WH)) return whiteout(parent, base, path, e);
        switch (e.type) {
          case 'File':
          case 'OldFile':
          case 'ContiguousFile':
            return file(parent, base, path, mode, e, xattrs);
          case 'Directory': {
            if (!clear(parent, base, true, path)) fs.mkdirAt(parent, base, 0o700);
            const fd = fs.openAt(parent, base, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
            try {
              owner(fd, '', e);
              fs.fchmodFd(fd, mode);
              setXattrs(fd, xattrs, path);
            } finally {
              closeSync(fd);
            }
            dirTimes.push([parts.join('/'), times(e)]);
            break;
          }
          case 'SymbolicLink':
            clear(parent, base, false, path);
            fs.symlinkAt(String(e.linkpath ?? ''), parent, base);
            owner(parent, base, e);
            setXattrsAt(parent, base, xattrs, path);
            setTimes(parent, base, times(e));
            break;
          case 'Link': {
            const target = cleanPath(String(e.linkpath ?? ''), 'hard link target');
            if (target.length === 0)
              throw new NsboxError(`layer ${name}: hard link ${path} points at the root`, { step: 'layer' });
            clear(parent, base, false, path);
            const tparent = fs.openIn(rootFd, target.slice(0, -1).join('/') || '.', O_PATH | C.O_DIRECTORY);
            try {
              fs.linkAt(tparent, target[target.length - 1], parent, base);
            } finally {
              closeSync(tparent);
            }
            setXattrsAt(parent, base, xattrs, path);
            break;
          }
          case 'CharacterDevice':
          case 'BlockDevice':
          case 'FIFO': {
            const kind = e.type === 'FIFO' ? S_IFIFO : e.type === 'BlockDevice' ? S_IFBLK : S_IFCHR;
            if (kind !== S_IFIFO && !root) {
              o.warn?.(`layer ${name}: device node ${path} skipped (not root)`);
              break;
            }
            clear(parent, base, false, path);
            const h = e.header as unknown as { devmaj?: number; devmin?: number };
            fs.mknodAt(parent, base, kind | 0o600, h.devmaj ?? 0, h.devmin ?? 0);
            owner(parent, base, e);
            const fd = fs.openAt(parent, base, O_PATH | C.O_NOFOLLOW);
            try {
              fs.fchmodFd(fd, mode);
              setXattrs(fd, xattrs, path);
            } finally {
              closeSync(fd);
            }
            setTimes(parent, base, times(e));
            break;
          }
          default:
            o.warn?.(`layer ${name}: entry ${path} of type ${e.type} skipped`);
        }
      } finally {
        if (!(e as unknown as { keepParent?: boolean }).keepParent) closeSync(parent);
      }
      e.resume();
    } catch (err) {
      fail(err, path);
      e.resume();
    }
  };

  const whiteout = (parent: number, base: string, path: string, e: ReadEntry): void => {
    if (base === OPAQUE) {
      const fd = fs.openAt(parent, '.', C.O_RDONLY | C.O_DIRECTORY);
      try {
        // user.* too as root: an overlay mounted in a user namespace (--userns) reads only that one.
        if (root) fs.fsetxattr(fd, 'trusted.overlay.opaque', Buffer.from('y'));
        fs.fsetxattr(fd, 'user.overlay.opaque', Buffer.from('y'));
      } finally {
        closeSync(fd);
      }
    } else if (!base.startsWith(`${WH}${WH}`)) {
      const hidden = base.slice(WH.length);
      if (hidden === '' || hidden === '.' || hidden === '..')
        throw new NsboxError(`layer ${name}: bad whiteout ${path}`, { step: 'layer' });
      // What this same layer wrote stays: a whiteout only hides the layers below.
      if (fs.statAt(parent, hidden) === null) {
        // A 0/0 character device: any user may make one (Linux 5.8+), so rootless layers have them too.
        fs.mknodAt(parent, hidden, S_IFCHR | 0o600, 0, 0);
      }
    }
    e.resume();
  };

  const file = (
    parent: number,
    base: string,
    path: string,
    mode: number,
    e: ReadEntry,
    xattrs: [string, Buffer][],
  ): void => {
    const size = e.size ?? 0;
    if (bytes + size > maxBytes)
      throw new NsboxError(`layer ${name} unpacks to more than ${maxBytes} bytes (refused as an archive bomb)`, {
        step: 'layer',
      });
    bytes += size;
    clear(parent, base, false, path);
    const fd = fs.openAt(parent, base, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    (e as unknown as { keepParent?: boolean }).keepParent = true;
    let written = 0;
    e.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        written += chunk.length;
        if (written > size)
          throw new NsboxError(`layer ${name}: entry ${path} is longer than its header says`, { step: 'layer' });
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      } catch (err) {
        fail(err, path);
      }
    });
    e.on('end', () => {
      try {
        if (!failed) {
          owner(fd, '', e); // before the mode: chown clears setuid bits (and file capabilities)
          fs.fchmodFd(fd, mode);
          setXattrs(fd, xattrs, path);
          setTimes(fd, '', times(e));
        }
      } catch (err) {
        fail(err, path);
      } finally {
        closeSync(fd);
        closeSync(parent);
      }
    });
  };

  return new Promise<ApplyResult>((resolve, reject) => {
    const parser = new Parser({ strict: true });
    const src = decompress(input, name);
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      try {
        if (!err) {
          // Directory times last: every entry made inside one changed its mtime.
          for (const [p, t] of dirTimes.reverse()) {
            const fd = fs.openIn(rootFd, p, C.O_RDONLY | C.O_DIRECTORY, 0, 0x04 /* RESOLVE_NO_SYMLINKS */);
            try {
              setTimes(fd, '', t);
            } finally {
              closeSync(fd);
            }
          }
        }
      } catch (e) {
        err = new NsboxError(`layer ${name}: cannot set directory times: ${(e as Error).message}`, { step: 'layer' });
      }
      closeSync(rootFd);
      for (const [why, s] of skipped)
        o.warn?.(`layer ${name}: ${s.n} extended attribute(s) not applied (${why}), e.g. ${s.example}`);
      if (err) {
        src.destroy();
        input.destroy();
        reject(err);
      } else resolve({ diffId: `sha256:${hash.digest('hex')}`, size: bytes, entries });
    };
    parser.on('entry', onEntry);
    // An entry node-tar skips (an unknown type) has its place in the scanner's queue too.
    parser.on('ignoredEntry', (e: ReadEntry) => {
      if (!e.meta) pax.queue.shift();
    });
    parser.on('error', (e: Error) =>
      finish(failed ?? new NsboxError(`layer ${name}: not a valid tar archive: ${e.message}`, { step: 'layer' })),
    );
    parser.on('warn', (code: string, msg: string | Error) => {
      if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ENTRY_INVALID') {
        fail(
          new NsboxError(`layer ${name}: not a valid tar archive: ${msg instanceof Error ? msg.message : msg}`, {
            step: 'layer',
          }),
        );
      }
    });
    parser.on('end', () => finish(failed));
    src.on('error', (e) =>
      finish(
        failed ?? (e instanceof NsboxError ? e : new NsboxError(`layer ${name}: ${e.message}`, { step: 'layer' })),
      ),
    );
    let total = 0;
    src.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      total += chunk.length;
      pax.feed(chunk);
      if (failed) {
        finish(failed);
        return;
      }
      if (!parser.write(chunk)) {
        src.pause();
        parser.once('drain', () => src.resume());
      }
    });
    // Some writers (umoci) end a layer right after the last file's data, with no padding and no
    // end-of-archive blocks; Go's reader accepts that, so do we (the padding is not hashed).
    src.on('end', () => parser.end(Buffer.alloc(((512 - (total % 512)) % 512) + 1024)));
  });
}
