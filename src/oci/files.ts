// The runtime's own state files (under --root, runc's layout): written whole and renamed, locked with
// flock, never through a symlink (O_NOFOLLOW on the last component; --root itself is the caller's).
import { closeSync, constants as C, openSync, renameSync, rmSync } from 'node:fs';
import { writeAll } from '../files.js';
import * as native from '../native.js';

const LOCK_EX = 2,
  LOCK_UN = 8;

/** Write a file so that readers see the old or the new content, never a part. */
export function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o644);
    try {
      writeAll(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** An exclusive flock on a file (created if missing); released by unlock or by our death. */
export class Lock {
  private constructor(private fd: number) {}

  static take(path: string): Lock {
    const fd = openSync(path, C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600);
    native.flock(fd, LOCK_EX);
    return new Lock(fd);
  }

  unlock(): void {
    if (this.fd < 0) return;
    native.flock(this.fd, LOCK_UN);
    closeSync(this.fd);
    this.fd = -1;
  }
}
