// Waiting for a process that is not our child: its pidfd becomes readable when it ends.
import { closeSync } from 'node:fs';
import * as native from '../native.js';
import { openPidfd } from './proc.js';
import type { ContainerState } from './store.js';

/** Resolves when the process behind pidfd has ended; the pidfd is closed then. */
export function waitFd(pidfd: number): Promise<void> {
  return new Promise((resolve) =>
    native.watchReadable(pidfd, () => {
      closeSync(pidfd);
      resolve();
    }),
  );
}

/** Resolves when the container's monitor has ended, i.e. everything it had to record and clean is done. */
export function waitMonitor(st: ContainerState): Promise<void> {
  const fd = openPidfd(st.monitor.pid, st.monitor.start);
  return fd === null ? Promise.resolve() : waitFd(fd);
}
