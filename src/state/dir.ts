// Where container state lives, and the two primitives it needs: an atomic write and a lock.
//   ROOT/.lock            taken while a name is claimed or released
//   ROOT/names/NAME       a symlink to the container's id
//   ROOT/ID/state.json    the container's state, replaced atomically
//   ROOT/ID/lock          serializes commands on one container (flock; made with the entry)
//   ROOT/ID/log, log.1    its output (detached containers), size-capped
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';

const LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;

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
  return `${xdg}/nsbox`;
}

export function ensureRoot(root: string): void {
  mkdirSync(`${root}/names`, { recursive: true, mode: 0o700 });
}

/** Write a file so that readers see the old or the new content, never a part. */
export function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** An exclusive flock on `path` (created if missing); released by unlock or by our death. */
export class Lock {
  private constructor(private fd: number) {}

  /** Waits for the lock. With create false, a missing lock file (a removed container) throws ENOENT. */
  static take(path: string, create = true): Lock {
    const fd = openSync(path, create ? 'a' : 'r', 0o600);
    native.flock(fd, LOCK_EX);
    return new Lock(fd);
  }

  /** The lock, or null when someone holds it now. */
  static try(path: string, create = true): Lock | null {
    const fd = openSync(path, create ? 'a' : 'r', 0o600);
    if (native.flock(fd, LOCK_EX | LOCK_NB)) return new Lock(fd);
    closeSync(fd);
    return null;
  }

  unlock(): void {
    if (this.fd < 0) return;
    // Explicitly: a child cloned meanwhile shares the open file and would keep it locked.
    native.flock(this.fd, LOCK_UN);
    closeSync(this.fd);
    this.fd = -1;
  }
}

export function withLock<T>(path: string, fn: () => T): T {
  const l = Lock.take(path);
  try {
    return fn();
  } finally {
    l.unlock();
  }
}
