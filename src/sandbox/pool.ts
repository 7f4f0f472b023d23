// A pool of sandboxes held before exec: each is a whole fresh sandbox (namespaces, root pivoted, cgroup
// joined, identity, no_new_privs), made with the plan a fresh start uses, but held on the hold mechanism of the
// OCI runtime's create/start (src/plan/hold.ts) with room for a command. A use gives one its command; it
// then enters its working directory, installs its seccomp filter and execs, exactly as a fresh one does.
// Each is used once; the pool refills in the background.
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bad, cString, integer, isPlainObject, kind, list, millis, optString } from '../check.js';
import { Container } from '../container.js';
import { stepError } from '../errors.js';
import { imageSandboxSpec } from '../images/library.js';
import { commandMessage, makeHoldFifo } from '../plan/hold.js';
import { PlanTemplate } from '../plan/template.js';
import type { credentials } from '../exec/creds.js';
import * as op from '../plan/ops.js';
import type { Step } from '../plan/steps.js';
import { commandCandidates, type ContainerSpec, type ResolvedSpec, resolveSpec, respec } from '../spec.js';
import { checkRunIo, runIn, type RunResult, type RunSpec } from './run.js';
import { checkSandboxSpec, type PipedSandbox, Sandbox, type SandboxSpec, spawn } from './spawn.js';
import { openStdio, type Stdio } from './stdio.js';

export interface PoolSpec extends Omit<SandboxSpec, 'stdio' | 'timeoutMs' | 'cpuTimeLimitMs' | 'signal' | 'command'> {
  /** How many sandboxes to keep held (1 to 256). */
  size: number;
}

/** What a use may set: its environment (added to the pool's), working directory and limits in time. */
export interface PoolSpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  cpuTimeLimitMs?: number;
  signal?: AbortSignal;
}

export interface PoolRunOptions
  extends PoolSpawnOptions,
    Pick<RunSpec, 'input' | 'maxOutputBytes' | 'maxTotalOutputBytes' | 'encoding'> {}

const SPAWN_KEYS = ['env', 'cwd', 'timeoutMs', 'cpuTimeLimitMs', 'signal'];
const RUN_KEYS = [...SPAWN_KEYS, 'input', 'maxOutputBytes', 'maxTotalOutputBytes', 'encoding'];

interface Entry {
  container: Container;
  stdio: Stdio;
}

const TMPFS_MAGIC = 0x01021994;

/** Where the hold FIFOs go: /dev/shm when it is a tmpfs (a FIFO made on ext4 took ~0.4 ms, on tmpfs 6 µs). */
function fifoBase(): string {
  try {
    if (statfsSync('/dev/shm').type === TMPFS_MAGIC) return '/dev/shm';
  } catch {
    /* none */
  }
  return tmpdir();
}

/** As spawn() has it: a cgroup always when we may make one (its accounting covers the whole container). */
const defaultLimits = (l: ContainerSpec['limits']) => l ?? (process.geteuid?.() === 0 ? {} : undefined);

export class SandboxPool {
  private readonly spec: Omit<PoolSpec, 'size'>;
  private readonly size: number;
  private readonly dir: string;
  /** The spec resolved (a rootfs, not an image). */
  private readonly resolved?: ResolvedSpec;
  /** Each fill's plan made from the first's, with its own id, FIFO and pipes (src/plan/template.ts). */
  private readonly template = new PlanTemplate<ReturnType<typeof credentials>>();
  private readonly idleList: Entry[] = [];
  /** Every container the pool made and has not handed out, until it has ended. */
  private readonly own = new Set<Promise<unknown>>();
  /** The clean-up of every container the pool made that has ended (after its result: deferCleanup). */
  private readonly cleaning = new Set<Promise<void>>();
  private cleanupError: unknown;
  private filling = 0;
  private seq = 0;
  private closed = false;
  /** Set when a fill failed: no more until a use (a spec that cannot start would spin). */
  private failing = false;

  constructor(spec: PoolSpec) {
    if (!isPlainObject(spec)) bad('spec', `must be an object, got ${kind(spec)}`);
    const { size, ...rest } = spec;
    this.size = integer(size, 'size', 1, 256);
    for (const k of ['stdio', 'timeoutMs', 'cpuTimeLimitMs', 'signal', 'command'])
      if (k in rest) bad(k, `is given per use (pool.run(command, options)), not to the pool`);
    // The whole spec is checked now, as spawn() checks it, and resolved once (the values too: limits, user, ...):
    // every fill starts from it with an id and pipes of its own (an image's gives each a root of its own).
    if (rest.image === undefined) {
      const c = checkSandboxSpec({ ...rest, command: ['true'] });
      this.resolved = resolveSpec({ ...c, limits: defaultLimits(c.limits), stdio: [0, 1, 2] } as ContainerSpec);
    }
    this.spec = rest;
    this.dir = mkdtempSync(join(fifoBase(), 'nsbox-pool-'));
    // Held sandboxes die with the process (their parent-death signal); their FIFOs go with it too.
    process.once('exit', this.removeDir);
    this.fill();
  }

  /** Sandboxes held and ready now. */
  get idle(): number {
    return this.idleList.length;
  }

  /**
   * Start `command` in a held sandbox (a fresh one when none is held yet): a Sandbox with piped stdin,
   * stdout and stderr, as spawn() gives.
   */
  spawn(command: string[], options: PoolSpawnOptions = {}): PipedSandbox {
    this.checkOptions(options, SPAWN_KEYS);
    return this.start(command, options);
  }

  /** run() in a held sandbox: feeds `input`, collects the output, resolves with the Result. */
  run(command: string[], options: PoolRunOptions & { encoding: 'buffer' }): Promise<RunResult<Buffer>>;
  run(command: string[], options?: PoolRunOptions): Promise<RunResult<string>>;
  async run(command: string[], options: PoolRunOptions = {}): Promise<RunResult<string | Buffer>> {
    this.checkOptions(options, RUN_KEYS);
    const { input, maxOutputBytes, maxTotalOutputBytes, encoding, ...rest } = options;
    const io = checkRunIo({ input, maxOutputBytes, maxTotalOutputBytes, encoding });
    return runIn(this.start(command, rest), io);
  }

  /**
   * Destroy the idle sandboxes (and those being made); resolves once nothing is left of them and of every
   * sandbox used that has ended (one still running is removed when it ends). Rejects when a clean-up failed.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.idleList.splice(0)) this.destroy(e);
    this.runWaiting();
    while (this.own.size) await Promise.allSettled([...this.own]);
    this.runWaiting();
    while (this.cleaning.size) await Promise.allSettled([...this.cleaning]);
    process.off('exit', this.removeDir);
    this.removeDir();
    if (this.cleanupError !== undefined) throw this.cleanupError;
  }

  /** Clean-ups waiting for the uses in flight to end (at most `size`). */
  private readonly waiting: (() => void)[] = [];

  /**
   * Run an ended sandbox's clean-up (its namespaces freed, its cgroup removed: kernel work of about a
   * millisecond) once no use is in flight, so that a burst of uses does not pay for it; at most `size` wait.
   */
  private readonly scheduleCleanup = (cleanup: () => Promise<void>): Promise<void> =>
    new Promise((resolve, reject) => {
      const go = () => cleanup().then(resolve, reject);
      if (this.inUse === 0 || this.closed || this.waiting.length >= this.size) go();
      else this.waiting.push(go);
    });

  private runWaiting(): void {
    for (const go of this.waiting.splice(0)) go();
  }

  /** A container's clean-up, from its end until done (close() awaits it). */
  private track(c: Container): void {
    const p = c.cleaned.then(
      () => {},
      (e) => {
        this.cleanupError ??= e;
      },
    );
    this.cleaning.add(p);
    p.then(() => this.cleaning.delete(p));
  }

  private readonly removeDir = () => rmSync(this.dir, { recursive: true, force: true });

  private checkOptions(o: unknown, keys: string[]): void {
    if (this.closed) bad('pool', 'is closed');
    if (!isPlainObject(o)) bad('options', `must be an object, got ${kind(o)}`);
    for (const k of Object.keys(o))
      if (!keys.includes(k)) bad(k, `unknown field ${k} (a use takes ${keys.join(', ')})`);
  }

  private start(command: string[], o: PoolSpawnOptions): PipedSandbox {
    list(command, 'command', (a, f) => cString(a, f, { empty: true, max: 128 * 1024 }), 1 << 20);
    if (command.length === 0 || command[0] === '') bad('command', 'no command given');
    const extra = Object.entries(o.env ?? {}).map(([k, v]) => {
      if (k === '' || k.includes('=')) bad('env', `invalid variable name ${JSON.stringify(k)}`);
      return `${k}=${cString(v, `env.${k}`, { empty: true, max: 128 * 1024 })}`;
    });
    const cwd = optString(o.cwd, 'cwd');
    if (cwd !== undefined && !cwd.startsWith('/')) bad('cwd', `working directory must be absolute: ${cwd}`);
    millis(o.timeoutMs, 'timeoutMs');
    millis(o.cpuTimeLimitMs, 'cpuTimeLimitMs');
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
      bad('signal', `must be an AbortSignal, got ${kind(o.signal)}`);
    const { timeoutMs, cpuTimeLimitMs, signal } = o;
    const entry = this.idleList.shift();
    this.failing = false;
    if (!entry) {
      this.refillSoon();
      // None held yet: a fresh start, the same sandbox made on the spot.
      const env = { ...this.spec.env, ...o.env };
      return this.using(
        spawn({
          ...this.spec,
          command,
          env,
          cwd: cwd ?? this.spec.cwd,
          timeoutMs,
          cpuTimeLimitMs,
          signal,
          stdio: 'pipe',
        }),
      );
    }
    this.own.delete(this.ownPromise.get(entry.container)!);
    const vars = new Map(entry.container.defaults.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv]));
    for (const kv of extra) vars.set(kv.slice(0, kv.indexOf('=')), kv);
    const env = [...vars.values()];
    const candidates = commandCandidates(command[0], env);
    let message: Buffer;
    try {
      message = commandMessage({ cwd: cwd ?? '', argv: command, env, candidates });
    } catch (e) {
      this.destroy(entry);
      throw e;
    }
    // A failed step is said as a fresh start says it: the same exec and chdir steps, in words.
    const explain = (step: Step | undefined, errno: number) =>
      step?.kind === 'heldExec'
        ? stepError(op.exec(command[0], command, env, candidates), errno)
        : step?.kind === 'heldChdir' && cwd !== undefined
          ? stepError(op.chdirInRoot(cwd), errno)
          : undefined;
    const started = process.hrtime.bigint();
    let running: Promise<void>;
    try {
      running = entry.container.go(message, explain);
    } catch (e) {
      this.destroy(entry);
      throw e;
    }
    // Refill once this one runs: its start does not wait behind the making of the next.
    running.then(
      () => this.refillSoon(),
      () => this.refillSoon(),
    );
    const held = { container: entry.container, stdio: entry.stdio, running, started };
    return this.using(new Sandbox({ timeoutMs, cpuTimeLimitMs, signal } as SandboxSpec, held) as PipedSandbox);
  }

  /** Sandboxes handed out and still running. */
  private inUse = 0;

  private using(sb: PipedSandbox): PipedSandbox {
    this.inUse++;
    // Over a turn of the loop after its end, on a timer: run() gives its result once the pipes report their
    // close (the close phase, after setImmediate's), and the caller's next use may follow it at once.
    const done = () =>
      setTimeout(() => {
        if (--this.inUse === 0) this.runWaiting();
        this.refillSoon();
      }, 0);
    sb.exited.then(done, done);
    return sb;
  }

  private readonly ownPromise = new WeakMap<Container, Promise<unknown>>();

  private refilling = false;

  /**
   * Refill after uses have started, one sandbox a turn of the event loop: making one is synchronous work (its
   * plan, its cgroup) that the uses' own events must not queue behind. While sandboxes are in use, only up to
   * a quarter of the size (a burst takes held ones, and the rest are made when it is over); else to the full.
   * On a timer, not setImmediate: that would run before the ended use's streams report their close (the
   * close phase of the same turn), and its result would wait behind the making of the next sandbox.
   */
  private refillSoon(): void {
    if (this.refilling) return;
    this.refilling = true;
    setTimeout(() => {
      this.refilling = false;
      const want = this.inUse > 0 ? Math.ceil(this.size / 4) : this.size;
      if (this.closed || this.failing || this.idleList.length + this.filling >= want) return;
      this.fillOne();
      this.refillSoon();
    }, 0);
  }

  /** Start held sandboxes until `size` are held or on their way. */
  private fill(): void {
    while (!this.closed && !this.failing && this.idleList.length + this.filling < this.size) this.fillOne();
  }

  private fillOne(): void {
    const fifo = join(this.dir, String(this.seq++));
    // The command comes with each use: the image's own Cmd (it may have none) is not needed here.
    const img = imageSandboxSpec({ ...this.spec, command: ['true'] } as SandboxSpec);
    let stdio: Stdio | undefined;
    let container: Container;
    try {
      const full = (img ? img.spec : { ...this.spec, command: ['true'] }) as ContainerSpec;
      stdio = openStdio('pipe');
      makeHoldFifo(fifo);
      const spec = { ...full, limits: defaultLimits(full.limits), stdio: stdio.childFds };
      container = new Container(spec, img ? [img.part] : [], {
        async: true,
        heldFifo: fifo,
        deferCleanup: this.scheduleCleanup,
        resolved: this.resolved && respec(this.resolved, spec, stdio.childFds),
        template: this.resolved && this.template,
      });
    } catch {
      img?.part.abort?.();
      stdio?.destroy();
      rmSync(fifo, { force: true });
      // A use then starts fresh, and fails as a fresh start would, with the same words.
      this.failing = true;
      return;
    }
    this.filling++;
    const s = stdio;
    container.spawned.then(
      () => s.closeChildEnds(),
      () => s.closeChildEnds(),
    );
    const entry = { container, stdio: s };
    const ended = container.exited.then(
      () => this.track(container),
      () => this.track(container),
    );
    this.own.add(ended);
    this.ownPromise.set(container, ended);
    ended.then(() => this.own.delete(ended));
    container.ready.then(
      () => {
        this.filling--;
        if (this.closed) return this.destroy(entry);
        this.idleList.push(entry);
        // Ended while idle (killed from outside): out of the list, and another made.
        ended.then(() => {
          const i = this.idleList.indexOf(entry);
          if (i >= 0) {
            this.idleList.splice(i, 1);
            s.destroy();
            this.fill();
          }
        });
      },
      () => {
        this.filling--;
        rmSync(fifo, { force: true });
        s.destroy();
        this.failing = true;
      },
    );
  }

  private destroy(e: Entry): void {
    e.container.kill('SIGKILL');
    e.stdio.destroy();
  }
}
