// A container's terminal: the slave of a pty becomes its stdin, stdout, stderr, its
// /dev/console and its controlling terminal.
import { MOUNT_ATTR } from '../native.js';
import type { StartPart } from '../plan/part.js';
import * as op from '../plan/ops.js';
import { rootSlots } from '../rootfs/root.js';

const S_IFREG = 0o100000;

/** Bind the pty slave at `path` (a host path, opened before pivot_root) on /dev/console. */
export function consolePart(path: string): StartPart {
  return {
    steps(b) {
      const slot = b.slot('/dev/console');
      const { dev, a } = rootSlots(b);
      // Read-only: container root cannot chmod or chown the host's pty node through /dev/console.
      b.add(
        'host',
        op.openTree(path, slot),
        op.setattrSlot(
          slot,
          MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC,
          0,
          false,
          'make the bind of the terminal read-only',
        ),
      );
      // Inside the /dev the plan mounted (its slot), not by a path through the rootfs; after setsid,
      // the controlling terminal.
      b.add(
        'system',
        op.mknodAt(dev, 'console', S_IFREG | 0o600, 0, 0, 'create /dev/console'),
        op.openBeneath(dev, 'console', a, 0, 'open /dev/console'),
        op.moveMountTo(slot, a, `bind ${path} on /dev/console`),
      );
      b.add('session', op.setTty(0));
    },
  };
}
