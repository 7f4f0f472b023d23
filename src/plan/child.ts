// Waiting on the child a plan started, through libuv: its exec result on the error pipe, and its
// end through its pidfd.
import { closeSync, readSync } from 'node:fs';
import * as native from '../native.js';
import type { SpawnedChild, SpawnRequest, WaitStatus } from '../native.js';
import { NsboxError, stepError } from '../errors.js';
import type { Encoded } from './encode.js';
import { wire } from './wire.js';
import type { Step } from './steps.js';

/**
 * Resolves with null once execve succeeded (EOF on the error pipe), or with the failed step and errno.
 * `keep`: leave the pipe open after a report it says is not the last (a hold's, before its command).
 */
export function execResult(
  errFd: number,
  keep?: (r: { step: number; errno: number }) => boolean,
): Promise<{ step: number; errno: number } | null> {
  return new Promise((resolve) => {
    native.watchReadable(errFd, () => {
      const buf = Buffer.alloc(8);
      let n = 0;
      try {
        n = readSync(errFd, buf, 0, 8, null);
      } finally {
        if (!(n === 8 && keep?.({ step: buf.readInt32LE(0), errno: buf.readInt32LE(4) }))) closeSync(errFd);
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

/** Starts a plan's child; `exit` resolves once it has been reaped (after onReaped). */
export function spawnPlan(
  plan: Encoded,
  req: Omit<SpawnRequest, 'ops'>,
  onReaped: () => void,
): { child: SpawnedChild; exit: Promise<WaitStatus> } {
  const child = native.spawn({ ...req, ops: wire(plan.ops) });
  return { child, exit: req.parent ? ended(child.pidfd, onReaped) : reaped(child.pidfd, onReaped) };
}

/** A child of our parent's (CLONE_PARENT) has ended: its status is its reaper's to read, not ours. */
export function ended(pidfd: number, onEnded: () => void): Promise<WaitStatus> {
  return new Promise((resolve) =>
    native.watchReadable(pidfd, () => {
      onEnded();
      closeSync(pidfd);
      resolve({ code: null, signal: null, userUs: 0, systemUs: 0, maxRssKb: 0 });
    }),
  );
}

const isHold = (plan: Encoded, f: { step: number; errno: number }) =>
  f.errno === 0 && plan.steps[f.step]?.kind === 'hold';

/**
 * Resolves once a container held with a command buffer (src/plan/hold.ts) waits for it; the error pipe stays
 * open for the command's own result (whenExecuted). Rejects with the step that failed, in words.
 */
export function whenHeld(errFd: number, plan: Encoded): Promise<void> {
  return execResult(errFd, (f) => isHold(plan, f)).then((f) => {
    if (f && isHold(plan, f)) return;
    if (!f) throw new NsboxError('the sandbox ended before it was held', { step: 'hold' });
    throw stepError(plan.steps[f.step], f.errno);
  });
}

/**
 * Resolves once the command runs (or is held before exec: src/plan/hold.ts); rejects with the step that
 * failed, in words (or `explain`'s error).
 */
export function whenExecuted(
  errFd: number,
  plan: Encoded,
  explain?: (step: Step | undefined, errno: number) => NsboxError | undefined,
): Promise<void> {
  return execResult(errFd).then((f) => {
    if (!f) return;
    const step = plan.steps[f.step];
    // The hold step's report: set-up is done and the container waits to be started (src/plan/hold.ts).
    if (f.errno === 0 && step?.kind === 'hold') return;
    throw explain?.(step, f.errno) ?? stepError(step, f.errno);
  });
}
