// A container is a process: compile the spec into a plan, clone into new namespaces, and
// watch the child through its pidfd.
import { closeSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as native from './native.js';
import type { WaitStatus } from './native.js';
import { NsboxError } from './errors.js';
import { encode } from './plan/encode.js';
import { spawnPlan, whenExecuted } from './plan/child.js';
import type { ExitStatus, StartPart, Usage } from './plan/part.js';
import { compile, namespaceFlags } from './compile.js';
import { hostFacts } from './host/facts.js';
import { procStat } from './proc.js';
import { deliver, signalName, signalNumber, type SignalMode } from './signals.js';
import { resolveSpec, type ContainerSpec, type ResolvedSpec } from './spec.js';
import { usernsPart } from './userns/part.js';
import { initPart } from './exec/init.js';
import { credentials } from './exec/creds.js';
import { differentNamespaces, Exec } from './exec/exec.js';
import { NAMESPACES } from './state/proc.js';
import { isPrivileged } from './userns/rootless.js';
import { CgroupPart, cgroupPart } from './cgroups/part.js';
import { devicesPart } from './devices/cgroup.js';
import { networkPart, type NetworkPart } from './network/part.js';

export type { ExitStatus, StartPart, Usage } from './plan/part.js';
export { compile, namespaceFlags } from './compile.js';

/** Namespaces need CAP_SYS_ADMIN, or a user namespace of our own (rootless, always on without root). */
function checkPrivilege(s: ResolvedSpec): void {
  if (!s.identity.userns && !isPrivileged()) {
    throw new NsboxError('creating namespaces needs CAP_SYS_ADMIN or a user namespace: run as root, or with --userns', {
      kind: 'host',
      code: 'EPERM',
      step: 'privilege',
    });
  }
}

export { signalName, signalNumber } from './signals.js';

/** `killedBy`: the signal nsbox ended PID 1 for (src/signals.ts), reported in place of its SIGKILL. */
function toExitStatus(w: WaitStatus, killedBy: number | null): ExitStatus {
  if (killedBy !== null && w.signal === osConstants.signals.SIGKILL) w = { ...w, signal: killedBy };
  const signal = w.signal === null ? null : signalName(w.signal);
  return {
    code: w.code,
    signal,
    status: w.code ?? 128 + (w.signal ?? 0),
    oomKilled: false,
    usage: {
      cpuUserUs: w.userUs,
      cpuSystemUs: w.systemUs,
      memoryBytes: 0,
      memoryPeakBytes: w.maxRssKb * 1024,
      pids: 0,
    },
  };
}

export class Container {
  readonly id: string;
  readonly name: string;
  readonly pid: number;
  /** The container's IPv4 address on its network (null for none, host, pasta). */
  readonly address: string | null;
  /** Settles when the command is running (execve done), or rejects with the step that failed. */
  readonly ready: Promise<void>;
  /** Settles when PID 1 has ended; rejects like `ready` if set-up failed. */
  readonly exited: Promise<ExitStatus>;
  private pidfd: number;
  private done = false;
  private killedBy: number | null = null;
  /** What an exec into it starts from: the container's environment, working directory and credentials. */
  private execBase!: { env: string[]; cwd: string; creds: ReturnType<typeof credentials> };
  private readonly signals: SignalMode;
  private readonly ownPidns: boolean;
  private parts: StartPart[];

  constructor(spec: ContainerSpec, parts: StartPart[] = []) {
    const s = resolveSpec(spec);
    checkPrivilege(s);
    const facts = hostFacts();
    if (s.identity.userns) parts = [usernsPart(s.identity.userns), ...parts];
    if (s.init) parts = [...parts, initPart()];
    // The cgroup (made now, limits validated by resolveSpec): see src/cgroups/part.ts.
    // A caller may bring its own (an OCI runtime's, at the path its config names).
    const own = parts.find((p): p is CgroupPart => p instanceof CgroupPart);
    const cg = own ?? cgroupPart(s);
    if (cg && !own) parts = [...parts, cg];
    let plan;
    let net: NetworkPart | null = null;
    try {
      // The devices allowed (a v1 devices cgroup or a v2 BPF program): see src/devices/cgroup.ts.
      const dev = devicesPart(s, cg);
      if (dev) parts = [...parts, dev];
      // The network (src/network/part.ts): attached now; its /etc files join the mounts of the plan.
      net = networkPart(s);
      if (net) parts = [...parts, net];
      // The plan can still refuse the spec (too many mounts): the parts are undone then.
      const built = compile(s, facts, parts);
      for (const p of parts) p.planned?.(built);
      this.execBase = { env: s.env, cwd: s.cwd, creds: credentials(built) };
      plan = encode(built.steps);
    } catch (e) {
      for (const p of parts) p.abort?.();
      throw e;
    }
    const sync = parts.some((p) => p.beforeRelease);
    let flags = namespaceFlags(s.namespaces);
    let cgroupFd: number | undefined;
    const parent = parts.some((p) => p.adopted);
    for (const p of parts) {
      flags |= p.flags ?? 0;
      cgroupFd = p.cgroupFd ?? cgroupFd;
    }
    for (const p of parts) flags &= ~(p.clearFlags ?? 0);
    let started: ReturnType<typeof spawnPlan>;
    try {
      started = spawnPlan(plan, { flags, sync, cgroupFd, parent }, () => {
        this.done = true;
      });
    } catch (e) {
      for (const p of parts) p.abort?.();
      throw e;
    }
    const child = started.child;
    this.id = s.id;
    this.name = s.name;
    this.signals = s.signals;
    this.ownPidns = s.namespaces.pid;
    this.parts = parts;
    this.pid = child.pid;
    this.address = net?.address ?? null;
    this.pidfd = child.pidfd;
    const exit = started.exit
      .then((w) => toExitStatus(w, this.killedBy))
      .then(async (st) => {
        for (const p of parts) await p.afterExit?.(st);
        return st;
      });
    try {
      for (const p of parts) p.started?.(child.pid);
    } catch (e) {
      // The caller gets no handle when this throws: nothing may run on (its exit still cleans up).
      native.pidfdSendSignal(child.pidfd, osConstants.signals.SIGKILL);
      exit.catch(() => {});
      closeSync(child.errFd);
      if (sync) closeSync(child.syncFd);
      throw e;
    }
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
    this.ready = whenExecuted(child.errFd, plan);
    this.exited = this.ready.then(
      () => exit,
      async (e) => {
        await exit;
        throw e;
      },
    );
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
    const st = procStat(this.pid);
    if (!st) return null;
    const tick = 10_000; // clock ticks are 100 Hz on Linux
    return {
      cpuUserUs: (st.utime + st.cutime) * tick,
      cpuSystemUs: (st.stime + st.cstime) * tick,
      memoryBytes: st.rssPages * 4096,
      memoryPeakBytes: 0,
      pids: 1,
    };
  }

  /**
   * Start a process inside the running container, as `nsbox exec` does: its namespaces (those it does
   * not share with us), its cgroups, root and working directory, environment and credentials.
   */
  exec(o: { command: string[]; env?: string[]; cwd?: string; stdio: [number, number, number] }): Exec {
    if (this.done)
      throw new NsboxError('the container is not running any more', { kind: 'step', code: 'ESRCH', step: 'exec' });
    const env = new Map(this.execBase.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv]));
    for (const kv of o.env ?? []) env.set(kv.slice(0, kv.indexOf('=')), kv);
    return new Exec({
      pid: this.pid,
      pidfd: this.pidfd,
      namespaces: differentNamespaces(this.pid, NAMESPACES, 'the container is not running any more'),
      cgroup: true,
      command: o.command,
      env: [...env.values()],
      cwd: o.cwd ?? this.execBase.cwd,
      creds: this.execBase.creds,
      stdio: o.stdio,
      tty: false,
    });
  }

  /**
   * Send a signal to PID 1. A signal it has no handler for ends the container, as it would end the
   * process outside one (unless `signals: 'docker'`). Returns false once the container has ended.
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.done) return false;
    try {
      const sig = signalNumber(signal);
      if (deliver(this.pidfd, this.pid, sig, this.signals, this.ownPidns)) this.killedBy ??= sig;
      return true;
    } catch (e) {
      if ((e as NsboxError).code === 'ESRCH') return false;
      throw e;
    }
  }
}
