// The child's identity steps: become root of the new user namespace as soon as the maps are
// written, and at the end take on the user, groups, capabilities and no_new_privs.
import * as op from '../plan/ops.js';
import type { Step } from '../plan/steps.js';
import { toHostId } from './idmap.js';
import type { Identity } from './identity.js';

const PR_SET_NO_NEW_PRIVS = 38;
const PR_SET_KEEPCAPS = 8;

/**
 * Right after the parent wrote the maps: drop the host's supplementary groups and become
 * container root, so set-up does not run with the host ids the clone started with.
 */
export function usernsEntryOps(id: Identity): Step[] {
  const u = id.userns;
  if (!u) return [];
  // One op of its own, not setgroups/setresuid: what exec replays are the final identity steps only.
  return [op.usernsRoot(u.setgroups, toHostId(u.gidMap, 0) !== undefined, toHostId(u.uidMap, 0) !== undefined)];
}

/** The last identity steps before exec: groups, gid, uid (keeping capabilities), capability sets. */
export function identityOps(id: Identity): Step[] {
  const ops: Step[] = [];
  if (!id.userns || id.userns.setgroups) ops.push(op.setgroups(id.groups));
  const c = id.caps;
  ops.push(
    op.setresgid(id.gid),
    op.prctl(PR_SET_KEEPCAPS, [1, 0, 0, 0], 'keep capabilities across setresuid'),
    op.setresuid(id.uid),
    op.caps(c.bounding, c.effective, c.permitted, c.inheritable, c.ambient),
  );
  return ops;
}

/** no_new_privs, unless turned off: setuid binaries and file capabilities then raise nothing. */
export function noNewPrivsOps(id: Identity): Step[] {
  return id.noNewPrivileges ? [op.prctl(PR_SET_NO_NEW_PRIVS, [1, 0, 0, 0], 'set no_new_privs')] : [];
}

/** devpts' gid=5 (tty) only when gid 5 exists inside. */
export function ttyGid(id: Identity): number | null {
  return !id.userns || toHostId(id.userns.gidMap, 5) !== undefined ? 5 : null;
}
