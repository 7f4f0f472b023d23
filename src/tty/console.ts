// A container's terminal: the slave of a pty becomes its stdin, stdout, stderr, its
// /dev/console and its controlling terminal.
import type { StartPart } from '../container.js';
import { MOUNT_ATTR } from '../native.js';
import * as op from '../plan/ops.js';
import { OP } from '../plan/ops.js';
import { lastIndexOf } from '../exec/init.js';
import { SLOT } from '../rootfs/root.js';

/** A slot of the plan's detached mounts that rootOps and the mount ops leave alone. */
const CONSOLE_SLOT = 63;
const S_IFREG = 0o100000;

/** Bind the pty slave at `path` (a host path, opened before pivot_root) on /dev/console. */
export function consolePart(path: string): StartPart {
  return {
    plan(ops) {
      const pivot = ops.findIndex((o) => o.op === OP.PIVOT_ROOT);
      // Read-only: container root cannot chmod or chown the host's pty node through /dev/console.
      ops.splice(pivot < 0 ? 0 : pivot, 0, op.openTree(path, CONSOLE_SLOT),
        op.setattrSlot(CONSOLE_SLOT, MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC, 0, false, 'make the bind of the terminal read-only'));
      // After /dev is made (and stdio is the terminal): console, new session, controlling terminal.
      let s = ops.findIndex((o) => o.op === OP.SETSID);
      if (s < 0) {
        s = lastIndexOf(ops, OP.EXEC);
        ops.splice(s, 0, op.setsid());
      }
      // Inside the /dev the plan mounted (its slot), not by a path through the rootfs.
      ops.splice(s, 0,
        op.mknodAt(SLOT.dev, 'console', S_IFREG | 0o600, 0, 0, 'create /dev/console'),
        op.openBeneath(SLOT.dev, 'console', SLOT.a, 0, 'open /dev/console'),
        op.moveMountTo(CONSOLE_SLOT, SLOT.a, `bind ${path} on /dev/console`));
      ops.splice(s + 4, 0, op.setTty(0));
    },
  };
}
