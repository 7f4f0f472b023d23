// A container's plan: the resolved spec and the host's facts in, the ordered steps out. Pure: it
// reads nothing from the host, so test/plan checks its output as text without root.
import { constants as osConstants } from 'node:os';
import { CLONE } from './native.js';
import { PlanBuilder, type Plan } from './plan/builder.js';
import * as op from './plan/ops.js';
import type { StartPart } from './plan/part.js';
import type { HostFacts } from './host/facts.js';
import { rootSteps } from './rootfs/root.js';
import { deviceMounts } from './devices/spec.js';
import { rlimitOps } from './hardening/rlimits.js';
import { commandCandidates, type ResolvedSpec } from './spec.js';
import { checkFilterLetsPlanRun } from './seccomp/needs.js';
import { identityOps, noNewPrivsOps, ttyGid, usernsEntryOps } from './userns/plan.js';

const PR_SET_PDEATHSIG = 1;

/** Clone flags for the namespaces a spec asks for; the mount namespace is always new. */
export function namespaceFlags(ns: ResolvedSpec['namespaces']): number {
  return (
    CLONE.NEWNS |
    (ns.pid ? CLONE.NEWPID : 0) |
    (ns.net ? CLONE.NEWNET : 0) |
    (ns.ipc ? CLONE.NEWIPC : 0) |
    (ns.uts ? CLONE.NEWUTS : 0) |
    (ns.cgroup ? CLONE.NEWCGROUP : 0)
  );
}

/** The container dies with the Node thread that started it, as a sandbox should. */
const pdeath = () => op.prctl(PR_SET_PDEATHSIG, [osConstants.signals.SIGKILL], 'set the parent-death signal');

/** The plan of a container: its own steps, then each part's, in phase order. */
export function compile(s: ResolvedSpec, facts: HostFacts, parts: readonly StartPart[] = []): Plan {
  const b = new PlanBuilder();
  if (parts.some((p) => p.beforeRelease)) b.add('sync', op.waitSync());
  // In a user namespace: become its root first (the maps are written by now).
  b.add('userns', ...usernsEntryOps(s.identity));
  const dies = s.dieWithParent !== false;
  if (dies) b.add('start', pdeath());
  b.add('stdio', ...op.stdioOps(s.stdio));
  b.add('descriptors', op.closeOthers([]));
  // A user namespace joined by path: its maps are not the spec's (devpts gets no gid= then).
  const joined = parts.find((p) => p.joinsUserns)?.joinsUserns;
  const joinsUserns = !!joined;
  rootSteps(
    b,
    {
      rootfs: s.rootfs,
      readOnly: s.readOnly,
      userns: !!s.identity.userns || joinsUserns,
      ttyGid: joinsUserns ? null : ttyGid(s.identity),
      mounts: [...s.hardening.mounts, ...deviceMounts(s.hardening.devices)],
      made: s.hardening.devices.filter((d) => d.made),
      maskPaths: s.hardening.maskPaths,
      nodev: !s.hardening.allDevices,
    },
    facts,
  );
  if (s.namespaces.uts) b.add('network', op.sethostname(s.hostname));
  if (s.namespaces.net) b.add('network', op.loopbackUp());
  b.add('session', op.setsid());
  b.add('rlimits', ...rlimitOps(s.hardening.rlimits));
  // A change of uid clears the parent-death signal: set it again.
  const identity = identityOps(s.identity).filter(
    (x) => !(joined && !joined.setgroups && x.kind === 'setgroups' && x.gids.length === 0),
  );
  b.add('identity', ...identity, ...(dies ? [pdeath()] : []));
  b.add('nnp', ...noNewPrivsOps(s.identity));
  b.add('cwd', op.chdirInRoot(s.cwd));
  const seccomp = s.hardening.seccompStep;
  if (seccomp) b.add(s.identity.noNewPrivileges ? 'seccomp' : 'privileged-seccomp', seccomp);
  b.add('exec-fds', op.closeFds(3));
  const held = parts.some((p) => p.execsHeld);
  b.add('exec', held ? op.heldExec() : op.exec(s.command[0], s.command, s.env, commandCandidates(s.command[0], s.env)));
  for (const p of parts) p.steps?.(b);
  const plan = b.build();
  // A filter that blocks what the child still runs after it would end the start in silence.
  checkFilterLetsPlanRun(plan.steps);
  return plan;
}
