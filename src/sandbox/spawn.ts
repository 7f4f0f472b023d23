/// <reference types="node" preserve="true" />
// spawn(spec): a sandbox with child_process ergonomics — streams, kill(), events and a Result
// with the accounting of a contest sandbox (exit, signal, OOM, timeouts, CPU time, peak memory).
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { Container, type ExitStatus } from '../container.js';
import type { ContainerSpec } from '../spec.js';
import { checkStdio, openStdio, type Stdio, type StdioOption } from './stdio.js';
import { bad, integer, isPlainObject, kind, millis } from '../check.js';
import { checkSpecShape } from '../spec-check.js';
import { execIn, type ExecOptions } from './exec.js';
import type { RunResult } from './run.js';
import { imageSandboxSpec } from '../images/library.js';

export interface SandboxSpec extends Omit<ContainerSpec, 'stdio' | 'rootfs'> {
  /** A directory or 'host'; leave it out to give `image`. */
  rootfs?: string;
  /** An image in the store (see pull(), importImage()): a copy-on-write root of it, gone at the end. */
  image?: string;
  /** Like child_process: 'pipe' (default), 'inherit', 'ignore', an fd, or one of these per stream. */
  stdio?: StdioOption | [StdioOption, StdioOption, StdioOption];
  /** Wall-clock limit: the whole container is killed when it is reached (at most 2^31-1 ms). */
  timeoutMs?: number;
  /** CPU-time limit (user + system of every process in the container). */
  cpuTimeLimitMs?: number;
  /** Aborting kills the container. */
  signal?: AbortSignal;
}

export type Status = 'ok' | 'exited' | 'signaled' | 'oom' | 'timeout' | 'cpu-limit';

export interface Result {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  status: Status;
  oomKilled: boolean;
  timedOut: boolean;
  wallMs: number;
  cpu: { userMs: number; systemMs: number };
  peakMemoryBytes: number;
}

const CPUS = availableParallelism();

/** The fields a sandbox handles itself; the rest is a ContainerSpec. */
const SANDBOX_KEYS = ['stdio', 'timeoutMs', 'cpuTimeLimitMs', 'signal'] as const;

/** Checks a whole SandboxSpec (every field, before anything is made); returns its container part. */
export function checkSandboxSpec(spec: unknown): Omit<SandboxSpec, (typeof SANDBOX_KEYS)[number]> {
  if (!isPlainObject(spec)) bad('spec', `must be an object, got ${kind(spec)}`);
  const { stdio, timeoutMs, cpuTimeLimitMs, signal, ...containerSpec } = spec;
  checkSpecShape(containerSpec);
  checkStdio(stdio);
  millis(timeoutMs, 'timeoutMs');
  millis(cpuTimeLimitMs, 'cpuTimeLimitMs');
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    bad('signal', `must be an AbortSignal, got ${kind(signal)}`);
  }
  return containerSpec as Omit<SandboxSpec, (typeof SANDBOX_KEYS)[number]>;
}

/** The events of a Sandbox, typed: `spawn` once the command runs, `exit` with its Result, `error`
 *  when it could not start (only emitted when listened to). */
export interface SandboxEvents {
  spawn: [];
  exit: [result: Result];
  error: [error: Error];
}

/** A pool's held container and its pipes, given its command (src/sandbox/pool.ts). */
export interface Held {
  container: Container;
  stdio: Stdio;
  /** Settles once the command runs; rejects with the step that failed. */
  running: Promise<void>;
  started: bigint;
}

export class Sandbox extends EventEmitter<SandboxEvents> {
  readonly id: string;
  readonly name: string;
  /** The container's IPv4 address on its network (spec.network), or null. */
  readonly address: string | null;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Settles with the Result once the container has ended; rejects if it could not start. */
  readonly exited: Promise<Result>;
  private container: Container;
  private killedFor: 'timeout' | 'cpu-limit' | 'abort' | null = null;
  private timers: NodeJS.Timeout[] = [];

  /** PID 1's pid on the host: known once the clone is done, at the latest when `spawn` is emitted (0 before). */
  get pid(): number {
    return this.container.pid;
  }

  constructor(spec: SandboxSpec, held?: Held) {
    super();
    if (held) {
      this.container = held.container;
      this.id = this.container.id;
      this.name = this.container.name;
      this.address = this.container.address;
      this.stdin = held.stdio.stdin;
      this.stdout = held.stdio.stdout;
      this.stderr = held.stdio.stderr;
      this.exited = this.watch(
        held.stdio,
        held.started,
        held.running,
        spec.timeoutMs,
        spec.cpuTimeLimitMs,
        spec.signal,
      );
      return;
    }
    // An image makes the spec whole: its copy-on-write root, command and config (src/images/library.ts).
    const img = imageSandboxSpec(spec);
    let containerSpec: ReturnType<typeof checkSandboxSpec>;
    let stdio: Stdio;
    try {
      containerSpec = checkSandboxSpec(img ? img.spec : spec);
      if (spec.signal?.aborted) throw abortError(spec.signal);
      stdio = openStdio(spec.stdio);
    } catch (e) {
      img?.part.abort?.();
      throw e;
    }
    const { timeoutMs, cpuTimeLimitMs: cpuLimitMs, signal } = spec;
    const started = process.hrtime.bigint();
    try {
      // A cgroup always (when we may make one): the accounting covers every process in the container.
      const limits = containerSpec.limits ?? (process.geteuid?.() === 0 ? {} : undefined);
      // checkSpecShape made sure of rootfs (from the spec or the image).
      const full = containerSpec as ContainerSpec;
      // The clone runs on libuv's pool: the child's ends of the pipes are closed once it has its own.
      this.container = new Container({ ...full, limits, stdio: stdio.childFds }, img ? [img.part] : [], {
        async: true,
      });
    } catch (e) {
      img?.part.abort?.();
      stdio.destroy();
      throw e;
    }
    this.container.spawned.then(
      () => stdio.closeChildEnds(),
      () => stdio.closeChildEnds(),
    );
    this.id = this.container.id;
    this.name = this.container.name;
    this.address = this.container.address;
    this.stdin = stdio.stdin;
    this.stdout = stdio.stdout;
    this.stderr = stdio.stderr;
    try {
      this.exited = this.watch(stdio, started, this.container.ready, timeoutMs, cpuLimitMs, signal);
    } catch (e) {
      // Nothing may run on without a handle: the caller gets none when this throws.
      for (const t of this.timers) clearTimeout(t);
      this.container.kill('SIGKILL');
      stdio.destroy();
      throw e;
    }
  }

  private watch(
    stdio: Stdio,
    started: bigint,
    running: Promise<void>,
    timeoutMs?: number,
    cpuLimitMs?: number,
    signal?: AbortSignal,
  ): Promise<Result> {
    if (timeoutMs !== undefined) this.timers.push(setTimeout(() => this.stop('timeout'), timeoutMs));
    if (cpuLimitMs !== undefined) this.watchCpu(cpuLimitMs, running);
    const onAbort = () => this.stop('abort');
    signal?.addEventListener('abort', onAbort, { once: true });

    running.then(
      () => this.emit('spawn'),
      () => {},
    );
    let exited = this.container.exited
      .then(
        (st) => this.result(st, started),
        (e) => {
          stdio.destroy();
          throw e;
        },
      )
      .finally(() => {
        // Nobody reads it any more: as child_process does, close our end (else its fd stays open).
        stdio.stdin?.destroy();
        for (const t of this.timers) clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
      });
    // 'error' only when listened to: users of `await exited` get the rejection instead of a crash.
    exited.then(
      (r) => this.emit('exit', r),
      (e) => {
        if (this.listenerCount('error')) this.emit('error', e);
      },
    );
    if (signal)
      exited = exited.then((r) => {
        if (this.killedFor === 'abort') throw abortError(signal);
        return r;
      });
    exited.catch(() => {});
    return exited;
  }

  /**
   * Run a command inside the running sandbox, as `nsbox exec` does (its namespaces, cgroups, root,
   * user and seccomp filter), feeding `input` and collecting its output as run() does.
   */
  exec(command: string[], options?: ExecOptions): Promise<RunResult<string>> {
    return this.container.ready.then(() => execIn(this.container, command, options));
  }

  /** Send a signal to the container's PID 1 (SIGKILL ends the whole container). */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (typeof signal === 'number') integer(signal, 'signal', 0, 64);
    else if (typeof signal !== 'string') bad('signal', `must be a signal name or number, got ${kind(signal)}`);
    return this.container.kill(signal);
  }

  private stop(why: 'timeout' | 'cpu-limit' | 'abort'): void {
    if (this.killedFor) return;
    if (this.container.kill('SIGKILL')) this.killedFor = why;
  }

  /** Checks the container's CPU time no more often than it could possibly reach the limit. */
  private watchCpu(limitMs: number, running: Promise<void>): void {
    const check = () => {
      const u = this.container.stats();
      if (u === null) return; // ended
      const used = (u.cpuUserUs + u.cpuSystemUs) / 1000;
      if (used >= limitMs) return this.stop('cpu-limit');
      // It can burn at most one CPU-ms per CPU per wall-ms; look again just before it could reach the limit.
      const wait = Math.max(5, Math.min(100, (limitMs - used) / CPUS));
      this.timers.push(setTimeout(check, wait).unref());
    };
    running.then(check, () => {});
  }

  private result(st: ExitStatus, started: bigint): Result {
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const oomKilled = !!st.oomKilled;
    const timedOut = this.killedFor === 'timeout';
    let status: Status;
    if (oomKilled) status = 'oom';
    else if (timedOut) status = 'timeout';
    else if (this.killedFor === 'cpu-limit') status = 'cpu-limit';
    else if (st.signal) status = 'signaled';
    else status = st.code === 0 ? 'ok' : 'exited';
    return {
      code: st.code,
      signal: st.signal,
      status,
      oomKilled,
      timedOut,
      wallMs,
      cpu: { userMs: st.usage.cpuUserUs / 1000, systemMs: st.usage.cpuSystemUs / 1000 },
      peakMemoryBytes: st.usage.memoryPeakBytes,
    };
  }
}

function abortError(signal: AbortSignal): Error {
  const e = new Error('The operation was aborted', { cause: signal.reason });
  e.name = 'AbortError';
  (e as NodeJS.ErrnoException).code = 'ABORT_ERR';
  return e;
}

/** Start a sandbox; throws at once on an invalid spec (the error names the field). */
/** A sandbox whose three streams are pipes (stdio left out, or 'pipe'): none of them is null. */
export type PipedSandbox = Sandbox & { readonly stdin: Writable; readonly stdout: Readable; readonly stderr: Readable };

export function spawn(spec: SandboxSpec & { stdio?: 'pipe' | ['pipe', 'pipe', 'pipe'] }): PipedSandbox;
export function spawn(spec: SandboxSpec): Sandbox;
export function spawn(spec: SandboxSpec): Sandbox {
  return new Sandbox(spec);
}
