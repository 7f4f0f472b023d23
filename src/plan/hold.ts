// Held before exec: the container is made and set up, then waits until it is started (an OCI
// runtime's create/start; a sandbox pool's warm containers). Like runc's exec.fifo, with no process
// of ours left behind: the child opens a FIFO read-write on the host before pivot_root (so a reader is
// always open and `start` can open it for writing without blocking), and in the 'hold' phase, after
// every set-up step but seccomp, reports "held" on the error pipe (the creator may exit then) and
// reads one byte from it. `start` writes that byte; once the container has gone on or died, no
// reader is left and opening the FIFO for writing fails with ENXIO, so a second start is refused.
// A pool's container is held with room for a command (HELD_COMMAND_BYTES, allocated in the plan before clone):
// it keeps reporting on the error pipe and reads the command message instead of one byte, then enters its
// working directory and execs it with the very steps a fresh start uses (native/hold.c). What it reads is
// only ever the command: nothing a fresh container could not have been given.
import { closeSync, constants as fsConstants, openSync, rmSync, writeSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import * as op from './ops.js';
import type { StartPart } from './part.js';

/** Room for a held command (argv, env, cwd and candidate paths): the kernel's own limit for argv and env. */
export const HELD_COMMAND_BYTES = 2 << 20;

/**
 * The part that holds a container on the FIFO at `fifo` (made by makeHoldFifo); with `command` (bytes),
 * until it is given its command (sendCommand), which replaces the plan's exec.
 */
export function holdPart(fifo: string, command = 0): StartPart {
  return {
    execsHeld: command > 0,
    steps(b) {
      const slot = b.slot('the hold FIFO');
      b.add('host', op.holdOpen(fifo, slot));
      b.add('hold', op.hold(slot, command));
      if (command) b.add('hold', op.heldChdir());
    },
  };
}

/** A held command as native/plan.h reads it; cwd '' keeps the plan's working directory. */
export function commandMessage(c: { cwd: string; argv: string[]; env: string[]; candidates: string[] }): Buffer {
  const strings = [c.cwd, ...c.argv, ...c.env, ...c.candidates].map((x) => Buffer.from(`${x}\0`));
  const body = Buffer.concat(strings);
  const head = Buffer.alloc(16);
  head.writeUInt32LE(12 + body.length, 0);
  head.writeUInt32LE(c.argv.length, 4);
  head.writeUInt32LE(c.env.length, 8);
  head.writeUInt32LE(c.candidates.length, 12);
  const count = c.argv.length + c.env.length + c.candidates.length + 1;
  if (12 + body.length > HELD_COMMAND_BYTES || count + 2 > HELD_COMMAND_BYTES / 16 + 3) {
    throw new NsboxError(`the command and its environment take more than ${HELD_COMMAND_BYTES} bytes`, {
      kind: 'spec',
      code: 'E2BIG',
      field: 'command',
    });
  }
  return Buffer.concat([head, body]);
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Open a held container's FIFO for writing (it holds the reader) and remove it: from here on only the fd
 * reaches the container. Null when nobody waits on it (dead).
 */
export function openHeld(fifo: string): number | null {
  try {
    return openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENXIO' || code === 'ENOENT') return null;
    throw new NsboxError(`cannot open ${fifo}: ${(e as Error).message}`, { step: 'hold' });
  } finally {
    rmSync(fifo, { force: true });
  }
}

/**
 * Write a command message to a held container's FIFO (from openHeld), and close it. False when nobody reads
 * it any more (dead). Past the FIFO's buffer (64 KiB) the writes wait for the child to read, which it does
 * at once (it waits in read()).
 */
export function sendCommand(fd: number, message: Buffer): boolean {
  try {
    let at = 0;
    const deadline = Date.now() + 10_000;
    while (at < message.length) {
      try {
        at += writeSync(fd, message, at);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') return false;
        if (code !== 'EAGAIN' || Date.now() > deadline) throw e;
        Atomics.wait(pause, 0, 0, 1);
      }
    }
    return true;
  } finally {
    closeSync(fd);
  }
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
