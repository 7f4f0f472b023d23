// --init: PID 1 is the addon's reaper (OP_INIT) rather than the command. It forks the command,
// forwards signals to it, reaps every orphan, and exits with the command's status.
import type { StartPart } from '../container.js';
import * as op from '../plan/ops.js';
import { OP, type Op } from '../plan/ops.js';

/** Index of the last op of a kind, or -1. */
export function lastIndexOf(ops: readonly Op[], kind: number): number {
  for (let i = ops.length - 1; i >= 0; i--) if (ops[i].op === kind) return i;
  return -1;
}

/** Put the init fork right before exec: after every set-up step, so PID 1 has the command's credentials. */
export function insertInit(ops: Op[]): void {
  const i = lastIndexOf(ops, OP.EXEC);
  ops.splice(i < 0 ? ops.length : i, 0, op.init());
}

export function initPart(): StartPart {
  return { plan: insertInit };
}
