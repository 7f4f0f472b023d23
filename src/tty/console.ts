// A container's terminal: the slave of a pty becomes its stdin, stdout, stderr, its
// /dev/console and its controlling terminal.
import type { StartPart } from '../container.js';
import * as op from '../plan/ops.js';
import { OP } from '../plan/ops.js';
import { lastIndexOf } from '../exec/init.js';

/** A slot of the plan's detached mounts that rootOps and the mount ops leave alone. */
const CONSOLE_SLOT = 63;

/** Bind the pty slave at `path` (a host path, opened before pivot_root) on /dev/console. */
export function consolePart(path: string): StartPart {
  return {
    plan(ops) {
      const pivot = ops.findIndex((o) => o.op === OP.PIVOT_ROOT);
      ops.splice(pivot < 0 ? 0 : pivot, 0, op.openTree(path, CONSOLE_SLOT));
      // After /dev is made (and stdio is the terminal): console, new session, controlling terminal.
      let s = ops.findIndex((o) => o.op === OP.SETSID);
      if (s < 0) {
        s = lastIndexOf(ops, OP.EXEC);
        ops.splice(s, 0, op.setsid());
      }
      ops.splice(s, 0, op.createFile('/dev/console', 0o600), op.moveMount(CONSOLE_SLOT, '/dev/console', path));
      ops.splice(s + 3, 0, op.setTty(0));
    },
  };
}
