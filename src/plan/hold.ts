// Held before exec: the container is made and set up, then waits until it is started (an OCI
// runtime's create/start; a sandbox pool's warm containers). Like runc's exec.fifo, with no process
// of ours left behind: the child opens a FIFO read-write on the host before pivot_root (so a reader is
// always open and `start` can open it for writing without blocking), and in the 'hold' phase, after
// every set-up step but seccomp, reports "held" on the error pipe (the creator may exit then) and
// reads one byte from it. `start` writes that byte; once the container has gone on or died, no
// reader is left and opening the FIFO for writing fails with ENXIO, so a second start is refused.
import { closeSync, constants as fsConstants, openSync, writeSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import * as op from './ops.js';
import type { StartPart } from './part.js';

/** The part that holds a container on the FIFO at `fifo` (made by makeHoldFifo). */
export function holdPart(fifo: string): StartPart {
  return {
    steps(b) {
      const slot = b.slot('the hold FIFO');
      b.add('host', op.holdOpen(fifo, slot));
      b.add('hold', op.hold(slot));
    },
  };
}

/** Make the FIFO (mode 0600: only root of the host may start the container). */
export function makeHoldFifo(path: string): void {
  native.native.mkfifo(path, 0o600);
}

/**
 * Let the held container go on. False when nobody waits on the FIFO (started already, or dead).
 */
export function release(fifo: string): boolean {
  let fd: number;
  try {
    fd = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENXIO' || code === 'ENOENT') return false;
    throw new NsboxError(`cannot open ${fifo}: ${(e as Error).message}`, { step: 'start' });
  }
  try {
    writeSync(fd, '1');
    return true;
  } finally {
    closeSync(fd);
  }
}
