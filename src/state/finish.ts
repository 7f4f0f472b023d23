// The clean-up step of a detached container (`nsbox nsbox-cleanup ID`), run by its nsbox-monitor once PID 1
// has ended and ID/exit is written: the policy the monitor leaves to TypeScript. Whatever is left in the
// container's cgroups is killed (after reading whether the OOM killer ended it), the cgroups and the network
// are removed, and the end is recorded; a --rm container is removed with its copy-on-write layer.
import { cgroupsNamed } from '../exec/cgroup.js';
import { teardown } from '../network/record.js';
import { exitOf, markStopped, readExit } from './exit.js';
import { isAlive } from './proc.js';
import { openEntry, readState, removeEntry, root, update } from './store.js';

export async function finish(id: string): Promise<void> {
  const r = root();
  if (!r) return;
  // Only once PID 1 has ended (its monitor reaped it): typed by hand on a running container, it does nothing.
  const st0 = readState(id, r);
  if (!st0 || isAlive(st0.pid, st0.pidStart)) return;
  let rec = null;
  try {
    const d = openEntry(id, r);
    try {
      rec = readExit(d);
    } finally {
      d.close();
    }
  } catch {
    return; // removed meanwhile (rm -f)
  }
  const exit = rec ? exitOf(rec) : null;
  for (const cg of cgroupsNamed(id)) {
    try {
      await cg.killAll();
      if (exit && cg.oomKilled(exit.signal === 'SIGKILL')) exit.oomKilled = true;
    } catch {
      /* another command is at it too */
    } finally {
      await cg.remove().catch(() => {});
    }
  }
  try {
    teardown(id);
  } catch {
    /* nothing recorded, or another command is at it */
  }
  const st = readState(id, r);
  if (!st) return;
  if (st.autoRemove) return removeEntry(st, r);
  const error = exit ? undefined : 'the monitor could not record how the container ended';
  update(id, (s) => markStopped(s, exit, rec?.finishedAt ?? new Date().toISOString(), error), r);
}
