// A plan is built in named phases, declared once here in the order the child runs them: reading
// PHASES tells the whole set-up. Concerns (root, cgroups, user namespace, terminal, seccomp, ...) add
// steps to a phase; none looks for another's steps. build() checks the invariants the security of
// the set-up rests on.
import { NsboxError } from '../errors.js';
import { PLAN_SLOTS } from './encode.js';
import { IDENTITY, OPENS_SLOT, RESOLVES_PATH, type Slot, type Step } from './steps.js';

export const PHASES = [
  'sync', //           wait for the parent: id maps written, cgroups joined for us
  'userns', //         become root of the new user namespace
  'start', //          parent-death signal, non-dumpable: right after the last uid change so far
  'stdio', //          the command's 0, 1, 2
  'descriptors', //    close every inherited fd: from here on only the plan's own are open
  'cgroup', //         enter v1 cgroups
  'cgroupns', //       unshare the cgroup namespace, rooted in them
  'namespaces', //     join namespaces held by fd (a network's, exec's target)
  'root', //           private propagation, the root's mount
  'host', //           before pivot_root: open what comes from the host (devices, volume sources, console)
  'pivot', //          pivot_root; the old root detached
  'system', //         /proc, /sys, /dev and its devices, /dev/console
  'mounts', //         volumes and tmpfs mounts
  'protect', //        masked and read-only paths, /sys/fs/cgroup, a read-only root
  'network', //        hostname, lo
  'session', //        setsid, the controlling terminal
  'rlimits', //        while still privileged (raising a hard limit needs CAP_SYS_RESOURCE)
  'privileged-seccomp', // without no_new_privs the kernel wants CAP_SYS_ADMIN: before identity
  'identity', //       groups, gid, uid, capabilities; the parent-death signal again
  'nnp', //            no_new_privs
  'cwd', //            the working directory, as the user
  'hold', //           held before exec until started (an OCI runtime's create/start; src/plan/hold.ts)
  'seccomp', //        last before exec
  'exec-fds', //       every fd above 2 close-on-exec
  'init', //           fork: PID 1 stays a reaper
  'exec',
] as const;

export type Phase = (typeof PHASES)[number];

const AFTER_SECCOMP: ReadonlySet<Phase> = new Set<Phase>(['seccomp', 'exec-fds', 'init', 'exec']);
const MOUNTS: ReadonlySet<Step['kind']> = new Set<Step['kind']>([
  'mount',
  'moveMount',
  'attach',
  'attachHeld',
  'fsmount',
  'pivotRoot',
  'setattr',
  'setattrSlot',
  'maskAt',
]);

export class PlanBuilder {
  private readonly steps = new Map<Phase, Step[]>();
  private nextSlot = 0;
  private readonly named = new Map<string, Slot>();
  private readonly kept: number[] = [];
  private readonly passed: number[] = [];

  /** Add steps to a phase, after those already there. */
  add(phase: Phase, ...steps: Step[]): this {
    let list = this.steps.get(phase);
    if (!list) this.steps.set(phase, (list = []));
    list.push(...steps);
    return this;
  }

  /** The steps of a phase so far (read only: parts contribute, they do not edit each other's). */
  phase(phase: Phase): readonly Step[] {
    return this.steps.get(phase) ?? [];
  }

  /** A slot of the plan's descriptor table, for this plan alone. */
  slot(what = 'mount'): Slot {
    if (this.nextSlot >= PLAN_SLOTS) {
      throw new NsboxError(`too many mounts: a plan holds at most ${PLAN_SLOTS} descriptors (${what})`, {
        kind: 'spec',
        step: 'mounts',
      });
    }
    return this.nextSlot++;
  }

  /**
   * A slot known by name to every part of the plan: the mounted /proc, /sys and /dev that later steps
   * work beneath, and shared scratch slots ('a', 'b', 'c'). The same name gives the same slot.
   */
  shared(name: string): Slot {
    let slot = this.named.get(name);
    if (slot === undefined) this.named.set(name, (slot = this.slot(name)));
    return slot;
  }

  /**
   * An inherited fd a later step needs (a namespace to join): the 'descriptors' step leaves it open.
   * The step that uses it must close it before the root is built.
   */
  keepOpen(fd: number): this {
    this.kept.push(fd);
    return this;
  }

  /** An inherited fd the command gets, as its stdio (an OCI runtime's --preserve-fds; never a directory). */
  passOn(fd: number): this {
    this.passed.push(fd);
    return this;
  }

  /** The steps in phase order, checked. */
  build(): Plan {
    const out: { step: Step; phase: Phase }[] = [];
    for (const phase of PHASES) {
      for (const s of this.steps.get(phase) ?? []) {
        const keep = [...this.kept, ...this.passed];
        const step = s.kind === 'closeInherited' && keep.length ? { ...s, keep: [...s.keep, ...keep] } : s;
        out.push({ step, phase });
      }
    }
    check(out, this.kept);
    return {
      steps: out.map((x) => x.step),
      phases: PHASES.filter((p) => this.steps.get(p)?.length).map((p) => [p, [...this.steps.get(p)!]]),
    };
  }
}

/** A built plan: its steps in order, and the same steps by phase. */
export interface Plan {
  steps: Step[];
  phases: [Phase, Step[]][];
}

function internal(message: string): never {
  throw new NsboxError(`plan: ${message}`, { kind: 'internal', step: 'plan' });
}

const ROOT_PHASE = PHASES.indexOf('root');

/**
 * The order the set-up's safety rests on; a violation is a bug in nsbox, never the user's input.
 * One pass over the steps (a start builds ~100): each invariant from the positions it notes.
 */
function check(plan: { step: Step; phase: Phase }[], kept: readonly number[]): void {
  let closed = -1,
    firstPath = -1,
    rootAt = -1,
    lastMount = -1,
    firstIdentity = -1,
    lastSeccomp = -1;
  let execs = 0,
    nnp = false,
    lastKind = '';
  const seccompPhases: Phase[] = [];
  const keptClosedAt = new Map<number, number>();
  const all: { step: Step; phase: Phase }[] = [];
  for (const x of plan) {
    all.push(x);
    for (const f of x.step.orElse ?? []) all.push({ step: f, phase: x.phase });
  }
  all.forEach(({ step, phase }, i) => {
    const k = step.kind;
    if (k === 'closeInherited' && closed < 0) closed = i;
    if (firstPath < 0 && (RESOLVES_PATH.has(k) || OPENS_SLOT.has(k))) firstPath = i;
    if (rootAt < 0 && PHASES.indexOf(phase) >= ROOT_PHASE) rootAt = i;
    if (k === 'close')
      for (const fd of step.fds) if (kept.includes(fd) && !keptClosedAt.has(fd)) keptClosedAt.set(fd, i);
    if (k === 'takeFd' && kept.includes(step.fd) && !keptClosedAt.has(step.fd)) keptClosedAt.set(step.fd, i);
    if (k === 'seccomp') {
      seccompPhases.push(phase);
      lastSeccomp = i;
    }
    if (phase === 'nnp') nnp = true;
    if (MOUNTS.has(k)) lastMount = i;
    if (firstIdentity < 0 && IDENTITY.has(k)) firstIdentity = i;
    if (k === 'exec' || k === 'heldExec') execs++;
    lastKind = k;
  });
  if (firstPath >= 0 && (closed < 0 || closed > firstPath)) {
    internal(`"${all[firstPath].step.desc}" resolves a path while inherited descriptors are open`);
  }
  // A kept fd (a namespace to join) is closed before the root is built, as the rest of what was
  // inherited is: only the host's own cgroup files may be written while it is open.
  for (const fd of kept) {
    const at = keptClosedAt.get(fd);
    if (at === undefined || (rootAt >= 0 && at > rootAt))
      internal(`inherited fd ${fd} is still open when the root is built`);
  }
  for (const phase of seccompPhases) {
    if (phase === 'privileged-seccomp' ? nnp : phase !== 'seccomp') internal(`the seccomp filter in phase ${phase}`);
  }
  if (lastSeccomp >= 0 && seccompPhases.every((p) => p === 'seccomp')) {
    const late = all.slice(lastSeccomp + 1).find((x) => !AFTER_SECCOMP.has(x.phase));
    if (late) internal(`"${late.step.desc}" after the seccomp filter`);
  }
  if (firstIdentity >= 0 && lastMount > firstIdentity) {
    internal(`"${all[lastMount].step.desc}" after the identity steps`);
  }
  if (execs !== 1 || (lastKind !== 'exec' && lastKind !== 'heldExec')) internal('a plan must end in one exec');
}
