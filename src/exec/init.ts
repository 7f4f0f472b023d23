// --init: PID 1 is the addon's reaper (OP_INIT) rather than the command. It forks the command,
// forwards signals to it, reaps every orphan, and exits with the command's status.
import type { StartPart } from '../plan/part.js';
import * as op from '../plan/ops.js';

/** The init fork goes right before exec: after every set-up step, so PID 1 has the command's credentials. */
export function initPart(): StartPart {
  return { steps: (b) => b.add('init', op.init()) };
}
