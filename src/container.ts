// A container is a process: compile the spec into a plan, clone into new namespaces, and
// watch the child through its pidfd.
import { close, closeSync, openSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as native from './native.js';
import type { WaitStatus } from './native.js';
import { NsboxError } from './errors.js';
import { encode, type Encoded } from './plan/encode.js';
import { wire } from './plan/wire.js';
import { ended, reaped, whenExecuted, whenHeld } from './plan/child.js';
import { HELD_COMMAND_BYTES, holdPart, openHeld, sendCommand } from './plan/hold.js';
import type { PlanTemplate } from './plan/template.js';
import type { Step } from './plan/steps.js';
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

/** spawnHeld's child once the pid is known: at its first report (held, or a failed step) or its end. */
function spawnHeld(req: native.SpawnRequest): Promise<native.SpawnedChild> {
  let h: ReturnType<typeof native.spawnHeld>;
  try {
    h = native.spawnHeld(req);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    native.watchReadable(h.errFd, () => {
      try {
        resolve({ ...native.heldChild(h.handle), errFd: h.errFd, syncFd: h.syncFd });
      } catch (e) {
        closeSync(h.errFd);
        reject(e);
      }
    });
  });
}

const endedHeld = () =>
  new NsboxError('the held sandbox ended before its command was given', { kind: 'step', step: 'hold' });

type Credentials = ReturnType<typeof credentials>;

/** How a container starts (the library's sandboxes and pool; the CLI and the OCI runtime use the defaults). */
export interface StartOptions {
  /**
   * Clone on a thread of libuv's pool, so the event loop runs on while the child sets itself up: `pid` is
   * 0 until `spawned` settles, and a failed clone rejects `spawned`, `ready` and `exited` instead of throwing.
   */
  async?: boolean;
  /**
   * Hold it before exec on this FIFO (made by makeHoldFifo) with room for a command: `ready` settles once it
   * is held, and go() gives it the command to run (a sandbox pool; src/plan/hold.ts).
   */
  heldFifo?: string;
  /**
   * Resolve `exited` once the status and usage are read, and remove what is left (the mount namespace and a
   * network namespace of its own with only lo, held open until then so that PID 1's exit does not tear them
   * down first; the cgroup) after it, when `deferCleanup` runs it: `cleaned` settles once that is done (a
   * sandbox pool, which awaits it in close()).
   */
  deferCleanup?: (cleanup: () => Promise<void>) => Promise<void>;
  /** The spec as resolveSpec (or respec) gave it, when the caller has it already (a pool, for each fill). */
  resolved?: ResolvedSpec;
  /** With heldFifo: the plans of a pool's fills, made from the first (src/plan/template.ts). */
  template?: PlanTemplate<Credentials>;
  /**
   * The command's environment is the spec's `env` alone, with HOME added when it has none (an OCI runtime's,
   * as runc's: no PATH or HOSTNAME of nsbox's own; the command is still looked up on a default PATH).
   */
  envExact?: boolean;
}

/** The started child, once known. */
interface Started {
  ready: Promise<void>;
  exited: Promise<ExitStatus>;
  cleaned: Promise<void>;
}

export class Container {
  readonly id: string;
  readonly name: string;
  /** PID 1's pid on the host (0 until `spawned` settles when started with `async`). */
  pid = 0;
  private net: NetworkPart | null = null;
  /** The container's IPv4 address on its network (null for none, host, pasta). */
  get address(): string | null {
    return this.net?.address ?? null;
  }
  /** Settles once the pid is known; rejects when the clone failed. */
  readonly spawned: Promise<void>;
  /** Settles when the command is running (execve done) or held, or rejects with the step that failed. */
  readonly ready: Promise<void>;
  /** Settles when PID 1 has ended; rejects like `ready` if set-up failed. */
  readonly exited: Promise<ExitStatus>;
  /** Settles once nothing of the container is left (after `exited`; later with `deferCleanup`). */
  readonly cleaned: Promise<void>;
  private readonly deferCleanup?: (cleanup: () => Promise<void>) => Promise<void>;
  /** With deferCleanup: namespaces whose teardown waits until after the end (holdNamespaces). */
  private nsFds: number[] = [];
  private readonly holdNet: boolean;
  private pidfd = -1;
  private errFd = -1;
  private done = false;
  private adopted = false;
  private killedBy: number | null = null;
  private pendingKill: number | null = null;
  /** A held container's command, given by go(): its exec result. */
  private given: { resolve(): void; reject(e: unknown): void; promise: Promise<void> } | null = null;
  private readonly heldFifo: string | undefined;
  /** A held container's FIFO, open for writing (its path removed once held). */
  private holdFd = -1;
  private readonly plan: Encoded;
  /** What an exec into it starts from: the container's environment, working directory and credentials. */
  private execBase!: { env: string[]; cwd: string; creds: ReturnType<typeof credentials> };
  private readonly signals: SignalMode;
  private readonly ownPidns: boolean;
  private parts: StartPart[];

  constructor(spec: ContainerSpec, parts: StartPart[] = [], opts: StartOptions = {}) {
    let s = opts.resolved ?? resolveSpec(spec);
    if (opts.envExact) {
      const env = Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`);
      if (!spec.env || !('HOME' in spec.env)) env.push(`HOME=${s.identity.uid === 0 ? '/root' : '/'}`);
      s = { ...s, env };
    }
    checkPrivilege(s);
    const facts = hostFacts();
    if (s.identity.userns) parts = [usernsPart(s.identity.userns), ...parts];
    if (s.init) parts = [...parts, initPart()];
    if (opts.heldFifo) parts = [...parts, holdPart(opts.heldFifo, HELD_COMMAND_BYTES)];
    // The cgroup (made now, limits validated by resolveSpec): see src/cgroups/part.ts.
    // A caller may bring its own (an OCI runtime's, at the path its config names).
    const own = parts.find((p): p is CgroupPart => p instanceof CgroupPart);
    const cg = own ?? cgroupPart(s);
    if (cg && !own) parts = [...parts, cg];
    let plan: Encoded;
    let bytes: Buffer;
    let net: NetworkPart | null = null;
    try {
      // The devices allowed (a v1 devices cgroup or a v2 BPF program): see src/devices/cgroup.ts.
      const dev = devicesPart(s, cg);
      if (dev) parts = [...parts, dev];
      // The network (src/network/part.ts): attached now; its /etc files join the mounts of the plan.
      net = networkPart(s);
      if (net) parts = [...parts, net];
      const fill = opts.template && opts.heldFifo && !parts.some((p) => p.planned);
      const values = { id: s.id, fifo: opts.heldFifo ?? '', fds: s.stdio };
      const made = fill ? opts.template!.make(values) : undefined;
      if (made) {
        plan = made.plan;
        bytes = made.bytes;
        this.execBase = { env: s.env, cwd: s.cwd, creds: made.extra };
      } else {
        // The plan can still refuse the spec (too many mounts): the parts are undone then.
        const built = compile(s, facts, parts);
        for (const p of parts) p.planned?.(built);
        this.execBase = { env: s.env, cwd: s.cwd, creds: credentials(built) };
        plan = encode(built.steps);
        bytes = wire(plan.ops);
        if (fill) opts.template!.learn(values, plan, bytes, this.execBase.creds);
      }
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
    this.id = s.id;
    this.name = s.name;
    this.signals = s.signals;
    this.ownPidns = s.namespaces.pid;
    this.parts = parts;
    this.plan = plan;
    this.heldFifo = opts.heldFifo;
    this.deferCleanup = opts.deferCleanup;
    // Only lo in it: nothing (a veth, an address) is handed back by a part once it ended.
    this.holdNet = s.namespaces.net && s.network.mode === 'none';
    this.net = net; // its address may come in beforeRelease (a network attached in the child's user namespace)
    this.adopted = parent;
    const req = { flags, sync, cgroupFd, parent, ops: bytes! };
    const abort = (e: unknown) => {
      for (const p of parts) p.abort?.();
      throw e;
    };
    if (!opts.async) {
      let child: native.SpawnedChild;
      try {
        child = native.spawn(req);
      } catch (e) {
        abort(e);
      }
      const st = this.started(child!, sync, true);
      this.spawned = Promise.resolve();
      this.ready = st.ready;
      this.exited = st.exited;
      this.cleaned = st.cleaned;
    } else {
      const child = opts.heldFifo && !sync ? spawnHeld(req) : native.spawnAsync(req);
      const st = child.then((c) => this.started(c, sync, false), abort);
      this.spawned = st.then(() => {});
      this.ready = st.then((x) => x.ready);
      this.exited = st.then((x) => x.exited);
      this.cleaned = st.then(
        (x) => x.cleaned,
        () => {},
      );
      this.spawned.catch(() => {});
    }
    this.ready.catch(() => {});
    this.exited.catch(() => {});
    this.cleaned.catch(() => {});
  }

  /**
   * The child exists: watch it, tell the parts its pid, release it. When that fails it is killed; the error
   * is thrown (`throwNow`, the caller gets no handle) or becomes `ready`'s and `exited`'s.
   */
  private started(child: native.SpawnedChild, sync: boolean, throwNow: boolean): Started {
    const parts = this.parts;
    this.pid = child.pid;
    this.pidfd = child.pidfd;
    this.errFd = child.errFd;
    const onEnded = () => {
      this.done = true;
    };
    // Adopted (CLONE_PARENT): the monitor reaps it; we only learn that it ended.
    const status = (this.adopted ? ended(child.pidfd, onEnded) : reaped(child.pidfd, onEnded))
      .then((w) => toExitStatus(w, this.killedBy))
      .then(async (st) => {
        for (const p of parts) await p.afterExit?.(st);
        return st;
      });
    // What is left once the status is read: the mount namespace we hold, then each part's (the cgroup).
    const cleanup = async () => {
      // The last references: the kernel unmounts the tree (and frees the network) in close(), here on
      // threads of libuv's pool.
      const fds = this.nsFds.splice(0);
      await Promise.all(fds.map((fd) => new Promise<void>((res) => close(fd, () => res()))));
      for (const p of parts) await p.cleanup?.(!!this.deferCleanup);
    };
    const defer = this.deferCleanup;
    const cleanupAfter = defer ? () => defer(cleanup) : cleanup;
    const cleaned = status.then(cleanupAfter, async (e) => {
      await cleanupAfter();
      throw e;
    });
    cleaned.catch(() => {});
    const exit = defer ? status : cleaned.then(() => status);
    let released = false;
    try {
      for (const p of parts) p.started?.(child.pid, sync);
      released = sync;
      if (sync) this.release(child, parts); // closes syncFd, whatever happens
    } catch (e) {
      // Nothing may run on (its exit still cleans up).
      try {
        native.pidfdSendSignal(child.pidfd, osConstants.signals.SIGKILL);
      } catch {
        /* ended already */
      }
      exit.catch(() => {});
      closeSync(child.errFd);
      if (sync && !released) closeSync(child.syncFd);
      if (throwNow) throw e;
      return {
        ready: Promise.reject(e),
        exited: exit.then(() => Promise.reject(e)),
        cleaned: cleaned.then(
          () => {},
          () => {},
        ),
      };
    }
    if (this.pendingKill !== null) this.kill(this.pendingKill);
    let ready: Promise<void>;
    let executed: Promise<void>;
    if (this.heldFifo) {
      const fifo = this.heldFifo;
      ready = whenHeld(child.errFd, this.plan).then(() => {
        const fd = openHeld(fifo);
        if (fd === null) throw endedHeld();
        this.holdFd = fd;
        if (this.deferCleanup) this.holdNamespaces();
      });
      let resolve!: () => void, reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      const given = (this.given = { resolve, reject, promise });
      // Ended while held (killed, or never used): nothing ran.
      const ended = () => {
        if (this.holdFd >= 0) closeSync(this.holdFd);
        this.holdFd = -1;
        if (this.given === given) reject(endedHeld());
      };
      exit.then(ended, ended);
      executed = ready.then(() => promise);
    } else {
      ready = executed = whenExecuted(child.errFd, this.plan);
    }
    const exited = executed.then(
      () => exit,
      async (e) => {
        await exit;
        throw e;
      },
    );
    return { ready, exited, cleaned: cleaned.catch(() => {}) };
  }

  /**
   * Keep references to the mount (and network) namespace of a live child (not reaped yet, so its pid is still
   * its own): PID 1's exit then leaves the tree mounted, and is reported without waiting for the unmounts (an
   * RCU grace period); they happen, and the network namespace is freed, when `cleanup` closes them.
   */
  private holdNamespaces(): void {
    if (this.done || this.nsFds.length) return;
    try {
      this.nsFds.push(openSync(`/proc/${this.pid}/ns/mnt`, 'r'));
      if (this.holdNet) this.nsFds.push(openSync(`/proc/${this.pid}/ns/net`, 'r'));
    } catch {
      /* ended meanwhile: what is held is closed by cleanup */
    }
  }

  /**
   * Give a held container (heldFifo) its command: the message from commandMessage(); resolves once it runs,
   * or rejects with the failed step, said by `explain` (e.g. as a fresh start's exec would be).
   */
  go(message: Buffer, explain: (step: Step | undefined, errno: number) => NsboxError | undefined): Promise<void> {
    const given = this.given;
    if (!given || this.holdFd < 0) throw new NsboxError('the sandbox is not held', { kind: 'internal', step: 'hold' });
    this.given = null;
    const fd = this.holdFd;
    this.holdFd = -1;
    if (!sendCommand(fd, message)) {
      given.reject(endedHeld());
      return given.promise;
    }
    whenExecuted(this.errFd, this.plan, explain).then(given.resolve, given.reject);
    return given.promise;
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
  /** The environment and working directory its command starts with (and an exec's, by default). */
  get defaults(): { env: readonly string[]; cwd: string } {
    return { env: this.execBase.env, cwd: this.execBase.cwd };
  }

  /** Live usage, or null once the container has ended. Without a cgroup: PID 1 and its reaped children. */
  stats(): Usage | null {
    if (this.done || this.pidfd < 0) return null;
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
    if (this.done || this.pidfd < 0)
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
      if (this.pidfd < 0) {
        // Not cloned yet (async): delivered once it is.
        this.pendingKill = sig;
        return true;
      }
      if (deliver(this.pidfd, this.pid, sig, this.signals, this.ownPidns)) this.killedBy ??= sig;
      return true;
    } catch (e) {
      if ((e as NsboxError).code === 'ESRCH') return false;
      throw e;
    }
  }
}
