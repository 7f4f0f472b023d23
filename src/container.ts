// A container is a process: compile the spec into a plan, clone into new namespaces, and
// watch the child through its pidfd.
import { closeSync, readFileSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as native from './native.js';
import { CLONE, type WaitStatus } from './native.js';
import { NsboxError, stepError } from './errors.js';
import * as op from './plan/ops.js';
import type { Op } from './plan/ops.js';
import { execResult, reaped } from './plan/child.js';
import { rootOps } from './rootfs/root.js';
import { deviceMounts } from './devices/spec.js';
import { rlimitOps } from './hardening/rlimits.js';
import { insertSeccomp } from './seccomp/index.js';
import { commandCandidates, resolveSpec, type ContainerSpec, type ResolvedSpec } from './spec.js';
import { usernsPart } from './userns/part.js';
import { identityOps, ttyGid, usernsEntryOps } from './userns/plan.js';
import { isPrivileged } from './userns/rootless.js';
import { cgroupPart } from './cgroups/part.js';
import { devicesPart } from './devices/cgroup.js';

const PR_SET_PDEATHSIG = 1;

/** Clone flags for the namespaces a spec asks for; the mount namespace is always new. */
export function namespaceFlags(ns: ResolvedSpec['namespaces']): number {
  return CLONE.NEWNS | (ns.pid ? CLONE.NEWPID : 0) | (ns.net ? CLONE.NEWNET : 0) | (ns.ipc ? CLONE.NEWIPC : 0)
    | (ns.uts ? CLONE.NEWUTS : 0) | (ns.cgroup ? CLONE.NEWCGROUP : 0);
}

/** Resources used by the whole container (every process in it, from its cgroup when it has one). */
export interface Usage {
  cpuUserUs: number;
  cpuSystemUs: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  pids: number;
}

export interface ExitStatus {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal name (e.g. 'SIGKILL'), or null. */
  signal: NodeJS.Signals | null;
  /** What the shell would report: the code, or 128 + the signal number. */
  status: number;
  /** Killed by the kernel's OOM killer inside the container's memory limit. */
  oomKilled: boolean;
  /** Final usage. Without a cgroup: PID 1's rusage (its reaped descendants included). */
  usage: Usage;
}

/** Namespaces need CAP_SYS_ADMIN, or a user namespace of our own (rootless, always on without root). */
function checkPrivilege(s: ResolvedSpec): void {
  if (!s.identity.userns && !isPrivileged()) {
    throw new NsboxError('creating namespaces needs CAP_SYS_ADMIN or a user namespace: run as root, or with --userns', { code: 'EPERM', step: 'privilege' });
  }
}

export function compile(s: ResolvedSpec): Op[] {
  const pdeath = () => op.prctl(PR_SET_PDEATHSIG, [osConstants.signals.SIGKILL], 'set the parent-death signal');
  const ops: Op[] = [
    // In a user namespace: become its root first (the maps are written by now).
    ...usernsEntryOps(s.identity),
    // The container dies with the Node process that started it, as a sandbox should.
    pdeath(),
    ...rootOps({
      rootfs: s.rootfs, readOnly: s.readOnly, userns: !!s.identity.userns, ttyGid: ttyGid(s.identity),
      mounts: [...s.hardening.mounts, ...deviceMounts(s.hardening.devices)], maskPaths: s.hardening.maskPaths,
      nodev: !s.hardening.allDevices,
    }),
  ];
  if (s.namespaces.uts) ops.push(op.sethostname(s.hostname));
  if (s.namespaces.net) ops.push(op.loopbackUp());
  ops.push(...op.stdioOps(s.stdio));
  ops.push(
    op.setsid(),
    // rlimits while still privileged: raising a hard limit needs CAP_SYS_RESOURCE.
    ...rlimitOps(s.hardening.rlimits),
    // User, groups, capabilities, no_new_privs; a change of uid clears the parent-death signal: set it again.
    ...identityOps(s.identity),
    pdeath(),
    op.chdir(s.cwd),
    op.closeFds(3),
    op.exec(s.command[0], s.command, s.env, commandCandidates(s.command[0], s.env)),
  );
  // seccomp: after the identity steps, last before exec (src/seccomp/index.ts insertSeccomp).
  return insertSeccomp(ops, s.hardening.seccompStep);
}

export function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name as NodeJS.Signals;
  return null;
}

export function signalNumber(sig: NodeJS.Signals | number): number {
  if (typeof sig === 'number') return sig;
  const n = (osConstants.signals as Record<string, number>)[sig];
  if (n === undefined) throw new NsboxError(`unknown signal: ${sig}`, { step: 'signal' });
  return n;
}

function toExitStatus(w: WaitStatus): ExitStatus {
  const signal = w.signal === null ? null : signalName(w.signal);
  return {
    code: w.code, signal, status: w.code ?? 128 + (w.signal ?? 0), oomKilled: false,
    usage: { cpuUserUs: w.userUs, cpuSystemUs: w.systemUs, memoryBytes: 0, memoryPeakBytes: w.maxRssKb * 1024, pids: 0 },
  };
}

/**
 * What one concern (cgroups, user namespace, ...) adds to a container's start. Each is made
 * from the resolved spec before clone; the parent runs `beforeRelease` while the child waits
 * at its first step, and `afterExit` once PID 1 has been reaped.
 */
export interface StartPart {
  /** Adjust the plan before clone (e.g. insert an init, or note what exec must replay). */
  plan?(ops: Op[]): void;
  /** Extra clone flags. */
  flags?: number;
  /** Clone flags to leave out (e.g. a namespace the child unshares later in its plan). */
  clearFlags?: number;
  /** A cgroup v2 directory fd for CLONE_INTO_CGROUP. */
  cgroupFd?: number;
  /** Parent-side work between clone and the child's go-ahead (e.g. writing uid_map). */
  beforeRelease?(pid: number): void;
  /** Told the pid once the child exists, without holding it back (no wait step, so the fast start). */
  started?(pid: number): void;
  /** Parent-side work after PID 1 ended (e.g. reading OOM events, removing the cgroup); may set
   *  status.oomKilled and status.usage. */
  afterExit?(status: ExitStatus): void | Promise<void>;
  /** Live usage of the whole container. */
  stats?(): Usage;
  /** Undo what was made before clone when the start fails. */
  abort?(): void;
}

export class Container {
  readonly id: string;
  readonly name: string;
  readonly pid: number;
  /** Settles when the command is running (execve done), or rejects with the step that failed. */
  readonly ready: Promise<void>;
  /** Settles when PID 1 has ended; rejects like `ready` if set-up failed. */
  readonly exited: Promise<ExitStatus>;
  private pidfd: number;
  private done = false;
  private parts: StartPart[];

  constructor(spec: ContainerSpec, parts: StartPart[] = []) {
    const s = resolveSpec(spec);
    checkPrivilege(s);
    if (s.identity.userns) parts = [usernsPart(s.identity.userns), ...parts];
    // The plan first: it can refuse the spec (too many mounts) before anything exists on the host.
    const ops = compile(s);
    // The cgroup (made now, limits validated by resolveSpec): see src/cgroups/part.ts.
    const cg = cgroupPart(s);
    if (cg) parts = [...parts, cg];
    // The devices allowed (a v1 devices cgroup or a v2 BPF program): see src/devices/cgroup.ts.
    try {
      const dev = devicesPart(s, cg);
      if (dev) parts = [...parts, dev];
    } catch (e) {
      for (const p of parts) p.abort?.();
      throw e;
    }
    const sync = parts.some((p) => p.beforeRelease);
    try {
      for (const p of parts) p.plan?.(ops);
    } catch (e) {
      for (const p of parts) p.abort?.();
      throw e;
    }
    if (sync) ops.unshift(op.waitSync());
    let flags = namespaceFlags(s.namespaces);
    let cgroupFd: number | undefined;
    for (const p of parts) {
      flags |= p.flags ?? 0;
      cgroupFd = p.cgroupFd ?? cgroupFd;
    }
    for (const p of parts) flags &= ~(p.clearFlags ?? 0);
    let child: native.SpawnedChild;
    try {
      child = native.spawn({ flags, ops, sync, cgroupFd });
    } catch (e) {
      for (const p of parts) p.abort?.();
      throw e;
    }
    this.id = s.id;
    this.name = s.name;
    this.parts = parts;
    this.pid = child.pid;
    this.pidfd = child.pidfd;
    try {
      for (const p of parts) p.started?.(child.pid);
    } catch (e) {
      // The caller gets no handle when this throws: nothing may run on. (Its exit still cleans up.)
      native.pidfdSendSignal(child.pidfd, osConstants.signals.SIGKILL);
      reaped(child.pidfd, () => {}).then(async (w) => {
        for (const p of parts) await p.afterExit?.(toExitStatus(w));
      }).catch(() => {});
      closeSync(child.errFd);
      if (sync) closeSync(child.syncFd);
      throw e;
    }
    const exit = reaped(child.pidfd, () => { this.done = true; }).then(toExitStatus).then(async (st) => {
      for (const p of parts) await p.afterExit?.(st);
      return st;
    });
    if (sync) {
      try {
        this.release(child, parts);
      } catch (e) {
        // The child is killed; its exit still runs afterExit (cleanup), but nobody awaits it.
        closeSync(child.errFd);
        exit.catch(() => {});
        throw e;
      }
    }
    this.ready = execResult(child.errFd).then((f) => { if (f) throw stepError(ops[f.step], f.errno); });
    this.exited = this.ready.then(() => exit, async (e) => { await exit; throw e; });
    this.ready.catch(() => {});
    this.exited.catch(() => {});
  }

  /** Run the parent-side steps, then let the child go on; on failure it is killed. */
  private release(child: native.SpawnedChild, parts: StartPart[]): void {
    try {
      for (const p of parts) p.beforeRelease?.(child.pid);
      writeSync(child.syncFd, '1');
    } catch (e) {
      native.pidfdSendSignal(child.pidfd, osConstants.signals.SIGKILL);
      throw e;
    } finally {
      closeSync(child.syncFd);
    }
  }
  /** Live usage, or null once the container has ended. Without a cgroup: PID 1 and its reaped children. */
  stats(): Usage | null {
    if (this.done) return null;
    const part = this.parts.find((p) => p.stats);
    if (part) return part.stats!();
    try {
      // /proc/PID/stat: utime stime cutime cstime are fields 14-17, in clock ticks (100 Hz on Linux).
      const f = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      const tick = 10_000;
      return {
        cpuUserUs: (Number(f[11]) + Number(f[13])) * tick, cpuSystemUs: (Number(f[12]) + Number(f[14])) * tick,
        memoryBytes: Number(f[21]) * 4096, memoryPeakBytes: 0, pids: 1,
      };
    } catch {
      return null;
    }
  }

  /** Send a signal to PID 1. Returns false once the container has ended. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.done) return false;
    try {
      native.pidfdSendSignal(this.pidfd, signalNumber(signal));
      return true;
    } catch (e) {
      if ((e as NsboxError).code === 'ESRCH') return false;
      throw e;
    }
  }
}
