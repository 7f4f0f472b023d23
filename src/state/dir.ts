// Where container state lives, and the primitives it needs: directories opened once and checked,
// files opened relative to them, an atomic write and a lock.
//   ROOT/.lock            taken while a name is claimed or released
//   ROOT/names/NAME       a symlink to the container's id
//   ROOT/ID/state.json    the container's state, replaced atomically
//   ROOT/ID/lock          serializes commands on one container (flock; made with the entry)
//   ROOT/ID/log, log.1    its output (detached containers), size-capped
// The state decides which pids nsbox signals, so a directory someone else can write is refused:
// each directory is opened without following a symlink and checked (ours, writable by nobody
// else) through its descriptor, and everything in it is reached through that descriptor with
// O_NOFOLLOW: opened with openat (the addon's), renamed and unlinked through /proc/self/fd/N/NAME.
import { closeSync, constants as C, fstatSync, lstatSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { writeAll } from '../files.js';
import * as native from '../native.js';

const LOCK_EX = 2,
  LOCK_NB = 4,
  LOCK_UN = 8;
const O_DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
export const O_READ = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;

/** NSBOX_STATE_DIR, else /run/nsbox for root, else $XDG_RUNTIME_DIR/nsbox. */
export function stateRoot(): string {
  const env = process.env.NSBOX_STATE_DIR;
  if (env) {
    if (!env.startsWith('/')) throw new NsboxError(`NSBOX_STATE_DIR must be an absolute path: ${env}`);
    return env.replace(/\/+$/, '') || '/';
  }
  if (process.getuid?.() === 0) return '/run/nsbox';
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (!xdg) throw new NsboxError('no place for container state: set XDG_RUNTIME_DIR (or NSBOX_STATE_DIR)');
  if (!xdg.startsWith('/')) throw new NsboxError(`XDG_RUNTIME_DIR must be an absolute path: ${xdg}`);
  return `${xdg}/nsbox`;
}

function refuse(path: string, why: string): never {
  throw new NsboxError(`refusing the state ${path}: ${why}`, { code: 'EPERM', step: 'state' });
}

// This process's effective uid: asked once (a syscall each time; `ps` checks hundreds of files).
let euid: number | undefined;

/** The open file is of the kind expected, ours, and writable by nobody else; its stat. */
export function checkOwned(fd: number, path: string, kind: 'directory' | 'file'): native.FsStat {
  // The addon's fstat: six numbers, not a Stats with four Dates (`ps` checks two files per container).
  const st = native.fsops.statAt(fd, '')!;
  checkStat(st, path, kind);
  return st;
}

function checkStat(st: { mode: number; uid: number }, path: string, kind: 'directory' | 'file'): void {
  const type = st.mode & C.S_IFMT;
  if (type !== (kind === 'directory' ? C.S_IFDIR : C.S_IFREG)) refuse(path, `not a ${kind}`);
  const uid = (euid ??= process.geteuid!());
  if (st.uid !== uid) refuse(path, `owned by uid ${st.uid}, not by this user (uid ${uid})`);
  if (st.mode & 0o022) refuse(path, `writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`);
}

/** One path component: nothing that walks elsewhere. */
function component(name: string): string {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new NsboxError(`invalid state file name: ${JSON.stringify(name)}`, { step: 'state' });
  }
  return name;
}

/** A state directory held open and checked; files in it are named relative to its descriptor. */
export class Dir {
  constructor(
    readonly path: string,
    readonly fd: number,
    readonly dev = 0,
    readonly ino = 0,
  ) {}

  /** The path of `name` inside this directory, resolved through its descriptor. */
  at(name: string): string {
    return `/proc/self/fd/${this.fd}/${component(name)}`;
  }

  /** This directory itself, through its descriptor (for fs.watch and friends). */
  get self(): string {
    return `/proc/self/fd/${this.fd}`;
  }

  /** A subdirectory, opened without following a symlink and checked; `mode` makes it when missing. */
  sub(name: string, mode?: number): Dir {
    const shown = `${this.path}/${component(name)}`;
    const fd = openDirFd(() => openOrMake(this.fd, name, mode), shown);
    try {
      checkOwned(fd, shown, 'directory');
      return new Dir(shown, fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** A file in it: `flags` always with O_NOFOLLOW (a symlink fails with ELOOP). */
  open(name: string, flags: number, mode = 0o600): number {
    return native.fsops.openAt(this.fd, component(name), flags | C.O_NOFOLLOW, mode);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function openDirFd(open: () => number, shown: string): number {
  try {
    return open();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') refuse(shown, 'not a directory (a symlink?)');
    throw e;
  }
}

/** The root, by its path; its device and inode say later whether the path still names it. */
function openRootDir(path: string): Dir {
  const fd = openDirFd(() => openSync(path, O_DIR), path);
  try {
    const st = fstatSync(fd);
    checkStat(st, path, 'directory');
    return new Dir(path, fd, st.dev, st.ino);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Opened first and made only when missing: the usual case (it exists) costs no failed mkdir. */
function openOrMake(dirFd: number, name: string, mode?: number): number {
  try {
    return native.fsops.openAt(dirFd, name, O_DIR, 0);
  } catch (e) {
    if (mode === undefined || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    native.fsops.mkdirAt(dirFd, name, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // made meanwhile: check what is there
  }
  return native.fsops.openAt(dirFd, name, O_DIR, 0);
}

const roots = new Map<string, Dir>();

/**
 * The state root, open and checked; null when it does not exist and `create` is false (its names/
 * directory is made by the first entry). Kept open for the process; opened again if the path now names
 * another directory.
 */
export function openRoot(create: boolean, path = stateRoot()): Dir | null {
  const known = roots.get(path);
  if (known) {
    try {
      const st = lstatSync(path);
      if (st.dev === known.dev && st.ino === known.ino) return known;
    } catch {
      /* removed */
    }
    roots.delete(path);
    known.close();
  }
  let dir: Dir | undefined;
  try {
    try {
      dir = openRootDir(path);
    } catch (e) {
      if (!create || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(path, { recursive: true, mode: 0o700 });
      dir = openRootDir(path);
    }
  } catch (e) {
    dir?.close();
    if (e instanceof NsboxError) throw e;
    if (!create && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    const code = (e as NodeJS.ErrnoException).code;
    const why = (e as Error).message;
    throw new NsboxError(`cannot use the state directory ${path}: ${why}`, { code, step: 'state-dir' });
  }
  roots.set(path, dir);
  return dir;
}

/** Write a file so that readers see the old or the new content, never a part. */
export function writeAtomic(dir: Dir, name: string, data: string): void {
  const tmp = `${name}.${process.pid}.tmp`;
  try {
    const fd = dir.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_TRUNC);
    try {
      writeAll(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(dir.at(tmp), dir.at(name));
  } catch (e) {
    rmSync(dir.at(tmp), { force: true });
    throw e;
  }
}

/** A new file (EEXIST if there is one), written whole. */
export function writeNew(dir: Dir, name: string, data: string): void {
  const fd = dir.open(name, C.O_WRONLY | C.O_CREAT | C.O_EXCL);
  try {
    writeAll(fd, data);
  } finally {
    closeSync(fd);
  }
}

/** An exclusive flock on a file of `dir` (created if missing); released by unlock or by our death. */
export class Lock {
  private constructor(private fd: number) {}

  private static open(dir: Dir, name: string, create: boolean): number {
    return dir.open(name, create ? C.O_RDWR | C.O_CREAT : C.O_RDONLY);
  }

  /** Waits for the lock. With create false, a missing lock file (a removed container) throws ENOENT. */
  static take(dir: Dir, name: string, create = true): Lock {
    const fd = Lock.open(dir, name, create);
    native.flock(fd, LOCK_EX);
    return new Lock(fd);
  }

  /** The lock, or null when someone holds it now. */
  static try(dir: Dir, name: string, create = true): Lock | null {
    const fd = Lock.open(dir, name, create);
    if (native.flock(fd, LOCK_EX | LOCK_NB)) return new Lock(fd);
    closeSync(fd);
    return null;
  }

  /** The lock of a lock file the caller holds open (and closes): unlock() leaves it open. */
  static onOpen(fd: number): Lock {
    native.flock(fd, LOCK_EX);
    const l = new Lock(fd);
    l.keep = true;
    return l;
  }

  private keep = false;

  unlock(): void {
    if (this.fd < 0) return;
    // Explicitly: a child cloned meanwhile shares the open file and would keep it locked.
    native.flock(this.fd, LOCK_UN);
    if (!this.keep) closeSync(this.fd);
    this.fd = -1;
  }
}

export function withLock<T>(dir: Dir, name: string, fn: () => T): T {
  const l = Lock.take(dir, name);
  try {
    return fn();
  } finally {
    l.unlock();
  }
}
