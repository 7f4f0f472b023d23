// The cgroup's share of a container's start: made before clone, entered at clone (v2) or by the child
// first thing (v1; by the parent while the child waits when there is a user namespace), the child's
// cgroup namespace rooted in it, /sys/fs/cgroup mounted inside, and
// after PID 1 ended: everything left killed, OOM and usage read, the cgroup removed.
import { basename } from 'node:path';
import type { ExitStatus, StartPart, Usage } from '../plan/part.js';
import type { PlanBuilder } from '../plan/builder.js';
import { CLONE, MOUNT_ATTR, MS } from '../native.js';
import * as op from '../plan/ops.js';
import type { Step } from '../plan/steps.js';
import type { ResolvedSpec } from '../spec.js';
import { Cgroup, cleanStale, closeFd, place, type CgroupDir } from './cgroup.js';
import { describeMode, hierarchies } from './hierarchy.js';
import { NsboxError } from '../errors.js';

const CGROUP_MNT = '/sys/fs/cgroup';

/** /sys/fs/cgroup inside: the container's own cgroup(s), read-only. */
function mountOps(dirs: CgroupDir[]): Step[] {
  const flags = MS.NOSUID | MS.NODEV | MS.NOEXEC;
  if (dirs.length === 1 && dirs[0].hierarchy.version === 2) {
    return [
      op.mount('cgroup2', CGROUP_MNT, 'cgroup2', flags, '', `mount cgroup2 on ${CGROUP_MNT}`),
      op.setattr(CGROUP_MNT, MOUNT_ATTR.RDONLY, 0, false, `make ${CGROUP_MNT} read-only`),
    ];
  }
  const ops = [op.mount('tmpfs', CGROUP_MNT, 'tmpfs', flags, 'mode=755,size=64k', `mount tmpfs on ${CGROUP_MNT}`)];
  for (const d of dirs) {
    const v2 = d.hierarchy.version === 2;
    const target = `${CGROUP_MNT}/${v2 ? 'unified' : basename(d.hierarchy.mount)}`;
    ops.push(op.mkdir(target), v2
      ? op.mount('cgroup2', target, 'cgroup2', flags, '', `mount cgroup2 on ${target}`)
      : op.mount('cgroup', target, 'cgroup', flags, d.hierarchy.controllers.join(','), `mount cgroup ${d.hierarchy.controllers.join(',')} on ${target}`));
  }
  ops.push(op.setattr(CGROUP_MNT, MOUNT_ATTR.RDONLY, 0, true, `make ${CGROUP_MNT} read-only`));
  return ops;
}

/**
 * A cgroup's steps (pure, for test/plan too): the child enters its v1 cgroups itself (`selfJoin`),
 * then unshares the cgroup namespace, rooted there, and mounts /sys/fs/cgroup once /sys is there.
 */
export function cgroupSteps(b: PlanBuilder, dirs: CgroupDir[], o: { cgroupns: boolean; selfJoin: boolean }): void {
  if (o.selfJoin) {
    for (const d of dirs) if (d.hierarchy.version === 1) b.add('cgroup', op.writeFile(`${d.path}/tasks`, '0', `enter cgroup ${d.path}`));
  }
  if (!o.cgroupns) return;
  b.add('cgroupns', op.unshare(CLONE.NEWCGROUP, 'cgroup namespace'));
  b.add('system', ...mountOps(dirs));
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

  constructor(readonly cgroup: Cgroup, private readonly cgroupns: boolean, userns = false) {
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

  async afterExit(st: ExitStatus): Promise<void> {
    closeFd(this.cgroupFd);
    try {
      await this.cgroup.killAll();
      const { peakKnown, ...u } = this.cgroup.usage();
      // Without memory.peak (v2 before 5.19), PID 1's wait status has the best peak there is.
      if (!peakKnown) u.memoryPeakBytes = Math.max(u.memoryPeakBytes, st.usage.memoryPeakBytes);
      st.usage = u;
      st.oomKilled = this.cgroup.oomKilled(st.signal === 'SIGKILL');
      this.final = u;
    } finally {
      await this.cgroup.remove();
    }
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
  if (!s.limits && s.namespaces.pid) {
    debug?.('no cgroup: no limits (the PID namespace ends every process of the container with PID 1)');
    return null;
  }
  const placement = place(s.limits ?? {}, h); // throws when a limit has no controller
  if (placement.size === 0) {
    if (s.limits) throw new NsboxError(`cannot make a cgroup: no usable cgroup hierarchy (${describeMode(h)})`, { step: 'cgroup' });
    debug?.('no cgroup: no usable cgroup hierarchy');
    return null;
  }
  let part: CgroupPart;
  try {
    part = new CgroupPart(Cgroup.create(s.id, s.limits ?? {}, placement), s.namespaces.cgroup, !!s.identity.userns);
  } catch (e) {
    if (s.limits || (e as { step?: string }).step !== 'cgroup') throw e;
    debug?.(`no cgroup: ${(e as Error).message}`);
    return null;
  }
  debug?.(`cgroup ${describeMode(h, [...new Set([...placement.values()].flat())])}: ${part.cgroup.dirs
    .map((d) => `${d.path} (${d.uses.join(', ')})`).join(', ')}`);
  return part;
}

let debug: ((line: string) => void) | undefined;

/** Say where each container's cgroup is made (the CLI's --debug). */
export function setCgroupDebug(fn: ((line: string) => void) | undefined): void {
  debug = fn;
}
