// sandbox.exec(command, options): a command inside a running sandbox (its namespaces, cgroups, root,
// user and seccomp filter, as `nsbox exec`), with run()'s input, output caps and Result.
import { closeSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import * as native from '../native.js';
import type { Container } from '../container.js';
import { bad, cString, integer, isPlainObject, kind, list, millis, optString } from '../check.js';
import { collect } from './output.js';
import { DEFAULT_MAX_OUTPUT, MAX_OUTPUT, type RunResult } from './run.js';
import { openStdio } from './stdio.js';

export interface ExecOptions {
  /** Added to (or replacing) the container's environment. */
  env?: Record<string, string>;
  /** Default: the container's working directory. */
  cwd?: string;
  input?: string | Buffer;
  /** Wall-clock limit: the exec'd process (and what it started in the PID namespace) is killed. */
  timeoutMs?: number;
  maxOutputBytes?: number;
  maxTotalOutputBytes?: number;
}

const EXEC_KEYS = ['env', 'cwd', 'input', 'timeoutMs', 'maxOutputBytes', 'maxTotalOutputBytes'];

/**
 * SIGKILL the exec'd command: the reaper outside (exec's pid) cannot pass SIGKILL on, so its children
 * (the command, inside the PID namespace) are killed through pidfds; the reaper then exits too.
 * They are its own children: their pids cannot be reused while it has not reaped them.
 */
function killTree(reaper: number): void {
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${reaper}/task/${reaper}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    /* gone */
  }
  for (const pid of [...children.map(Number), reaper]) {
    try {
      const fd = native.pidfdOpen(pid);
      try {
        native.pidfdSendSignal(fd, 9);
      } finally {
        closeSync(fd);
      }
    } catch {
      /* ended */
    }
  }
}

export async function execIn(container: Container, command: string[], o: ExecOptions = {}): Promise<RunResult<string>> {
  list(command, 'command', (a, f) => cString(a, f, { empty: true, max: 128 * 1024 }), 1 << 20);
  if (command.length === 0 || command[0] === '') bad('command', 'no command given');
  if (!isPlainObject(o)) bad('options', `must be an object, got ${kind(o)}`);
  for (const k of Object.keys(o))
    if (!EXEC_KEYS.includes(k)) bad(k, `unknown field ${k} (exec takes ${EXEC_KEYS.join(', ')})`);
  const env = Object.entries(o.env ?? {}).map(([k, v]) => {
    if (k === '' || k.includes('=')) bad('env', `invalid variable name ${JSON.stringify(k)}`);
    return `${k}=${cString(v, `env.${k}`, { empty: true, max: 128 * 1024 })}`;
  });
  const cwd = optString(o.cwd, 'cwd');
  if (cwd !== undefined && !cwd.startsWith('/')) bad('cwd', `working directory must be absolute: ${cwd}`);
  const timeoutMs = millis(o.timeoutMs, 'timeoutMs');
  const max =
    o.maxOutputBytes === undefined ? DEFAULT_MAX_OUTPUT : integer(o.maxOutputBytes, 'maxOutputBytes', 0, MAX_OUTPUT);
  const total = {
    left:
      o.maxTotalOutputBytes === undefined
        ? 2 * max
        : integer(o.maxTotalOutputBytes, 'maxTotalOutputBytes', 0, MAX_OUTPUT),
  };
  if (o.input !== undefined && typeof o.input !== 'string' && !(o.input instanceof Uint8Array)) {
    bad('input', `must be a string or a Buffer, got ${kind(o.input)}`);
  }
  const stdio = openStdio('pipe');
  const started = process.hrtime.bigint();
  let x;
  try {
    x = container.exec({ command, env, cwd, stdio: stdio.childFds });
  } catch (e) {
    stdio.destroy();
    throw e;
  } finally {
    stdio.closeChildEnds();
  }
  const out = collect(stdio.stdout as Readable, max, total),
    err = collect(stdio.stderr as Readable, max, total);
  stdio.stdin!.on('error', () => {});
  stdio.stdin!.end(o.input ?? '');
  let timedOut = false;
  const exec = x;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          killTree(exec.pid);
        }, timeoutMs);
  try {
    await x.ready;
  } catch (e) {
    clearTimeout(timer);
    stdio.destroy();
    throw e;
  }
  const r = await x.exited;
  clearTimeout(timer);
  // What it left in the background may hold the pipes: read what is there, then let go.
  const grace = new Promise<void>((res) => setTimeout(res, 1000).unref());
  await Promise.race([Promise.all([out.done, err.done]), grace]);
  stdio.stdout?.destroy();
  stdio.stderr?.destroy();
  return {
    code: r.code,
    signal: r.signal,
    oomKilled: false,
    timedOut,
    status: timedOut ? 'timeout' : r.signal ? 'signaled' : r.code === 0 ? 'ok' : 'exited',
    wallMs: Number(process.hrtime.bigint() - started) / 1e6,
    cpu: { userMs: r.userUs / 1000, systemMs: r.systemUs / 1000 },
    peakMemoryBytes: r.maxRssKb * 1024,
    stdout: Buffer.concat(out.c.chunks).toString(),
    stderr: Buffer.concat(err.c.chunks).toString(),
    outputTruncated: out.c.truncated || err.c.truncated,
  };
}
