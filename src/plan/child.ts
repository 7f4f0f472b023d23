// Waiting on the child a plan started, through libuv: its exec result on the error pipe, and its
// end through its pidfd.
import { closeSync, readSync } from 'node:fs';
import * as native from '../native.js';
import type { WaitStatus } from '../native.js';

/** Resolves with null once execve succeeded (EOF on the error pipe), or with the failed step and errno. */
export function execResult(errFd: number): Promise<{ step: number; errno: number } | null> {
  return new Promise((resolve) => {
    native.watchReadable(errFd, () => {
      const buf = Buffer.alloc(8);
      let n = 0;
      try {
        n = readSync(errFd, buf, 0, 8, null);
      } finally {
        closeSync(errFd);
      }
      resolve(n === 8 ? { step: buf.readInt32LE(0), errno: buf.readInt32LE(4) } : null);
    });
  });
}

/**
 * Resolves once the process has ended and been reaped; the pidfd is closed then, after onReaped.
 * Under a tracer (strace -f) the pidfd can be readable a moment before waitid may reap: look again
 * shortly then.
 */
export function reaped(pidfd: number, onReaped: () => void): Promise<WaitStatus> {
  return new Promise((resolve, reject) => {
    const check = () => {
      let w: WaitStatus | null;
      try {
        w = native.waitPidfd(pidfd);
      } catch (e) {
        onReaped();
        closeSync(pidfd);
        return reject(e);
      }
      if (!w) return void setTimeout(() => native.watchReadable(pidfd, check), 10);
      onReaped();
      closeSync(pidfd);
      resolve(w);
    };
    native.watchReadable(pidfd, check);
  });
}
