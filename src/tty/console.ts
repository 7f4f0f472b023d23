// A container's terminal: the slave of a pty becomes its stdin, stdout, stderr, its
// /dev/console and its controlling terminal.
import type { StartPart } from '../plan/part.js';
import * as op from '../plan/ops.js';

/** Bind the pty slave at `path` (a host path, opened before pivot_root) on /dev/console. */
export function consolePart(path: string): StartPart {
  return {
    steps(b) {
      const slot = b.slot('/dev/console');
      b.add('host', op.openTree(path, slot));
      // Once /dev is made: the console; after setsid, the controlling terminal.
      b.add('system', op.createFile('/dev/console', 0o600), op.moveMount(slot, '/dev/console', path));
      b.add('session', op.setTty(0));
    },
  };
}
