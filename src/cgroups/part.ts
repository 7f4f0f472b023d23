// The cgroup's share of a container's start: made before clone, entered at clone (v2) or by the child
// first thing (v1; by the parent while the child waits when there is a user namespace), the child's
// cgroup namespace rooted in it, /sys/fs/cgroup mounted inside, and
// after PID 1 ended: everything left killed, OOM and usage read, the cgroup removed.
import { basename } from 'node:path';
import type { ExitStatus, StartPart, Usage } from '../plan/part.js';
import type { PlanBuilder } from '../plan/builder.js';
import { CLONE, MOUNT_ATTR } from '../native.js';
import { rootSlots } from '../rootfs/root.js';
import * as op from '../plan/ops.js';
import type { Step } from '../plan/steps.js';
import type { ResolvedSpec } from '../spec.js';
import { Cgroup, cleanStale, closeFd, place, type CgroupDir } from './cgroup.js';
import { describeMode, hierarchies, type Hierarchies } from './hierarchy.js';
import { NsboxError } from '../errors.js';

const CGROUP_MNT = '/sys/fs/cgroup';

/**
 * /sys/fs/cgroup inside: the container's own cgroup(s), read-only, mounted beneath the /sys the plan
 * holds (a shared slot of src/rootfs/root.ts), not by a path through the rootfs. May cross mounts: in a
 * user namespace /sys may be the host's, bound.
 */
function mountOps(b: PlanBuilder, dirs: CgroupDir[]): Step[] {
  const { sys, a, b: m, c } = rootSlots(b);
  const attrs = MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC;
  const open = op.openBeneath(sys, 'fs/cgroup', a, op.OPEN_AT.XDEV, `open ${CGROUP_MNT}`);
  if (dirs.length === 1 && dirs[0].hierarchy.version === 2) {
    return [
      open,
      op.fsmount('cgroup2', ['source=cgroup2'], m, attrs | MOUNT_ATTR.RDONLY, `make a cgroup2 for ${CGROUP_MNT}`),
      op.moveMountTo(m, a, `mount cgroup2 on ${CGROUP_MNT}`),
    ];
  }
  const ops = [
    open,
    op.fsmount('tmpfs', ['source=tmpfs', 'mode=755', 'size=64k'], c, attrs, `make a tmpfs for ${CGROUP_MNT}`),
    op.attach(c, a, `mount tmpfs on ${CGROUP_MNT}`),
  ];
  for (const d of dirs) {
    const v2 = d.hierarchy.version === 2;
    const name = v2 ? 'unified' : basename(d.hierarchy.mount);
    const what = v2 ? 'cgroup2' : `cgroup ${d.hierarchy.controllers.join(',')}`;
    ops.push(
      op.openBeneath(c, name, a, op.OPEN_AT.DIR, `make ${CGROUP_MNT}/${name}`),
      op.fsmount(
        v2 ? 'cgroup2' : 'cgroup',
        v2 ? ['source=cgroup2'] : ['source=cgroup', ...d.hierarchy.controllers],
        m,
        attrs,
        `make a ${what}`,
      ),
      op.moveMountTo(m, a, `mount ${what} on ${CGROUP_MNT}/${name}`),
    );
  }
  ops.push(
    op.setattrSlot(c, MOUNT_ATTR.RDONLY, 0, true, `make ${CGROUP_MNT} read-only`),
    op.closeSlots([c], CGROUP_MNT),
  );
  return ops;
}

/**
 * A cgroup's steps (pure, for test/plan too): the child enters its v1 cgroups itself (`selfJoin`),
 * then unshares the cgroup namespace, rooted there, and mounts /sys/fs/cgroup once /sys is there.
 */
export function cgroupSteps(b: PlanBuilder, dirs: CgroupDir[], o: { cgroupns: boolean; selfJoin: boolean }): void {
  if (o.selfJoin) {
    for (const d of dirs)
      if (d.hierarchy.version === 1) b.add('cgroup', op.writeFile(`${d.path}/tasks`, '0', `enter cgroup ${d.path}`));
  }
  if (!o.cgroupns) return;
  b.add('cgroupns', op.unshare(CLONE.NEWCGROUP, 'cgroup namespace'));
  b.add('system', ...mountOps(b, dirs));
}

let staleCleaning: Promise<string[]> | undefined;

/** Cleans cgroups left by dead nsbox processes, once per process; resolves with their names. */
export function cleanStaleOnce(): Promise<string[]> {
  staleCleaning ??= cleanStale(hierarchies(), (line) => debug?.(line)).catch(() => []);
  return staleCleaning;
}

export class CgroupPart implements StartPart {
  /** With a cgroup namespace, the child unshares it once it is in the cgroup, so that is its root. */
  readonly clearFlags: number;
  readonly cgroupFd?: number;
  readonly beforeRelease?: (pid: number) => void;
  private final?: Usage;

  /** v1 without a user namespace: the child writes itself into each cgroup, first thing, so the start
   *  needs no wait for the parent (and takes the fast CLONE_VM|CLONE_VFORK path). It writes `tasks`,
   *  not cgroup.procs: it is one thread, and moving a thread skips the global lock whose RCU grace
   *  period costs a cgroup.procs write 5-30 ms on an idle host. */
  private readonly selfJoin: CgroupDir[] = [];

  constructor(
    readonly cgroup: Cgroup,
    private readonly cgroupns: boolean,
    userns = false,
  ) {
    this.clearFlags = cgroupns ? CLONE.NEWCGROUP : 0;
    const v1 = cgroup.dirs.filter((d) => d.hierarchy.version === 1);
    if (v1.length && userns) this.beforeRelease = (pid) => cgroup.join(pid);
    else this.selfJoin = v1;
    try {
      this.cgroupFd = cgroup.openV2();
    } catch (e) {
      cgroup.removeNow();
      throw e;
    }
  }

  /** Enter the v1 cgroups (without a user namespace), then the cgroup namespace, and once /sys is
   *  mounted: /sys/fs/cgroup. */
  steps(b: PlanBuilder): void {
    cgroupSteps(b, this.cgroup.dirs, { cgroupns: this.cgroupns, selfJoin: this.selfJoin.length > 0 });
  }

  /** Paths of the container's cgroup, one per hierarchy. */
  get paths(): string[] {
    return this.cgroup.dirs.map((d) => d.path);
  }

  /** Live usage while the container runs; the final figures after. */
  stats(): Usage {
    if (this.final) return this.final;
    const { peakKnown: _, ...u } = this.cgroup.usage();
    return u;
  }

  /** Everything left is killed, usage and OOM read; the cgroup is removed by cleanup(), which always runs. */
  async afterExit(st: ExitStatus): Promise<void> {
    closeFd(this.cgroupFd);
    let usage = this.cgroup.usage();
    // pids.current counts every task in it and below: 0 there, and nothing is left to kill (one read less).
    if (usage.pids > 0 || !this.cgroup.dir('pids')) {
      await this.cgroup.killAll();
      usage = this.cgroup.usage();
    }
    const { peakKnown, ...u } = usage;
    // Without memory.peak (v2 before 5.19), PID 1's wait status has the best peak there is.
    if (!peakKnown) u.memoryPeakBytes = Math.max(u.memoryPeakBytes, st.usage.memoryPeakBytes);
    st.usage = u;
    st.oomKilled = this.cgroup.oomKilled(st.signal === 'SIGKILL');
    this.final = u;
  }

  cleanup(offThread: boolean): Promise<void> {
    return this.cgroup.remove(offThread);
  }

  abort(): void {
    closeFd(this.cgroupFd);
    this.cgroup.removeNow();
  }
}

/**
 * The cgroup part for a container, or null for none. A container gets a cgroup when its spec has
 * `limits` (even `{}`: accounting only), and when it shares the host's PID namespace (so that what
 * PID 1 leaves behind can be killed; best-effort without limits). Otherwise it is left out for
 * speed: the clean end then comes from the PID namespace (the kernel kills every process in it
 * when PID 1 ends, and PID 1 dies with its parent), and usage from PID 1's wait status.
 */
export function cgroupPart(s: ResolvedSpec): CgroupPart | null {
  const h = hierarchies();
  if (h.v2 || h.v1.length) void cleanStaleOnce();
  const everywhere = mustHaveOwnEverywhere(s, h);
  if (!s.limits && s.namespaces.pid && !everywhere) {
    debug?.('no cgroup: no limits (the PID namespace ends every process of the container with PID 1)');
    return null;
  }
  const placement = place(s.limits ?? {}, h); // throws when a limit has no controller
  if (everywhere) {
    for (const hier of [...h.v1, ...h.named, h.v2]) if (hier && !placement.has(hier)) placement.set(hier, []);
  }
  if (placement.size === 0) {
    if (s.limits)
      throw new NsboxError(`cannot make a cgroup: no usable cgroup hierarchy (${describeMode(h)})`, { step: 'cgroup' });
    debug?.('no cgroup: no usable cgroup hierarchy');
    return null;
  }
  let part: CgroupPart;
  try {
    part = new CgroupPart(Cgroup.create(s.id, s.limits ?? {}, placement), s.namespaces.cgroup, !!s.identity.userns);
  } catch (e) {
    if (s.limits || everywhere || (e as { step?: string }).step !== 'cgroup') throw e;
    debug?.(`no cgroup: ${(e as Error).message}`);
    return null;
  }
  debug?.(
    `cgroup ${describeMode(h, [...new Set([...placement.values()].flat())])}: ${part.cgroup.dirs
      .map((d) => `${d.path} (${d.uses.join(', ')})`)
      .join(', ')}`,
  );
  return part;
}

const CAP_SYS_ADMIN = 21n;

/**
 * A container that can mount (CAP_SYS_ADMIN, --privileged) can mount any cgroup hierarchy and see it
 * from its cgroup namespace's root: on v1 at a hierarchy's root it writes release_agent, a program
 * the kernel runs as host root (CVE-2022-0492); on v2 that root is the caller's own cgroup when the
 * container was never moved, where it writes cgroup.kill or memory.max. So, as runc does, it gets a
 * cgroup of its own in every hierarchy (v1, named, v2) and a cgroup namespace rooted there: what it
 * mounts shows only its own subtree.
 */
function mustHaveOwnEverywhere(s: ResolvedSpec, h: Hierarchies): boolean {
  if ((!h.v2 && h.v1.length + h.named.length === 0) || s.identity.rootless) return false;
  if (((s.identity.caps.bounding >> CAP_SYS_ADMIN) & 1n) === 0n) return false;
  if (!s.namespaces.cgroup) {
    throw new NsboxError(
      "a container with CAP_SYS_ADMIN needs its own cgroup namespace: with the host's, mounting a " +
        "cgroup hierarchy shows its root (release_agent on v1, CVE-2022-0492; the host's cgroups on v2)",
      { step: 'cgroup' },
    );
  }
  return true;
}

let debug: ((line: string) => void) | undefined;

/** Say where each container's cgroup is made (the CLI's --debug). */
export function setCgroupDebug(fn: ((line: string) => void) | undefined): void {
  debug = fn;
}
