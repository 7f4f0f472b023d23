// Shared by the fuzz tests: run many CLI invocations a few at a time, each with a deadline, and
// sort the outcomes.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLI, snapshot } from '../helpers.js';

/** ok: exit 0; error: exit 125 with one line `nsbox: ...`; missing: that error being `nsbox: no such
 *  container` (every command); bad-error: exit 125 otherwise (several lines, raw control characters). */
export type Outcome = 'ok' | 'error' | 'missing' | 'bad-error' | 'stack' | 'hang' | 'other-exit';

export interface Invocation {
  /** What it tries, for the report: e.g. "run --cpus huge". */
  label: string;
  argv: string[];
  /** Exit 0 is right for this one (valid values); otherwise a one-line error and exit 125. */
  valid?: boolean;
  /** Or any of these outcomes. */
  accept?: Outcome[];
}

export interface Result extends Invocation {
  outcome: Outcome;
  code: number | null;
  stderr: string;
}

/** A stack frame, or Node's own report of an uncaught error. */
const STACK = /^\s+at .+(:\d+:\d+\)?|\(native\))$|internal error|Uncaught|node:internal/m;

export function classify(code: number | null, stderr: string, timedOut: boolean): Outcome {
  if (timedOut) return 'hang';
  if (STACK.test(stderr)) return 'stack';
  if (code === 0) return 'ok';
  const lines = stderr.split('\n').filter((l) => l !== '');
  const clean = lines.length === 1 && lines[0].startsWith('nsbox: ') && !/[\u0000-\u001f\u007f-\u009f]/.test(lines[0]);
  if (code === 125 && clean && /^nsbox: no such container: /.test(lines[0])) return 'missing';
  if (code === 125) return clean ? 'error' : 'bad-error';
  return 'other-exit';
}

function once(inv: Invocation, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--', CLI, ...inv.argv], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    p.stderr.on('data', (d) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('error', (e) => {
      stderr += `spawn: ${e.message}`;
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ...inv, code, stderr, outcome: classify(code, stderr, timedOut) });
    });
  });
}

/** Runs them all, `parallel` at a time. */
export async function runAll(
  list: Invocation[],
  opts: { parallel?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Result[]> {
  const out: Result[] = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      out[i] = await once(list[i], opts.timeoutMs ?? 20_000, opts.env ?? process.env);
    }
  };
  await Promise.all(Array.from({ length: opts.parallel ?? 4 }, worker));
  return out;
}

/** Counts by outcome, e.g. { total: 421, ok: 30, error: 391 }. */
export function counts(results: { outcome: string }[]): Record<string, number> {
  const c: Record<string, number> = { total: results.length };
  for (const r of results) c[r.outcome] = (c[r.outcome] ?? 0) + 1;
  return c;
}

/** The ones whose outcome is wrong: a valid one that did not succeed, or anything else but a clean error. */
export function wrong(results: Result[]): Result[] {
  return results.filter((r) =>
    r.accept
      ? !r.accept.includes(r.outcome)
      : r.valid
        ? r.outcome !== 'ok' && r.outcome !== 'missing'
        : r.outcome !== 'error',
  );
}

/** Container names no container can have (paths, control characters, too long). */
export const BAD_NAMES: Record<string, string> = {
  empty: '',
  dot: '.',
  dotdot: '..',
  slash: 'a/b',
  up: '../../etc',
  absolute: '/etc/passwd',
  long: 'x'.repeat(5000),
  escape: 'a\u001b]0;pwned\u0007',
  newline: 'a\nb',
  unicode: 'é∂😀',
  dash: '-',
  space: 'a b',
};

/** Strings a flag's value may be, by name: none of them is a plausible value for most flags. */
export const VALUES: Record<string, string> = {
  empty: '',
  huge: 'x'.repeat(100_000),
  negative: '-1',
  hugeNegative: '-99999999999999999999',
  zero: '0',
  fraction: '0.5',
  nan: 'NaN',
  exponent: '1e309',
  hex: '0x10',
  hugeNumber: '99999999999999999999999',
  word: 'abc',
  unicode: 'é∂😀',
  bidi: 'a\u202eb',
  escape: 'a\u001b]0;pwned\u0007b',
  newline: 'a\nb',
  dotdot: '../..',
  equals: '=',
  percent: '%s%n',
};

/**
 * Whether a process is this test's: this process or a CLI it ran (whose environment names this
 * test's state directory) is among its ancestors. Other test runs on the machine are not.
 */
function ours(pid: number): boolean {
  const marker = `NSBOX_STATE_DIR=${process.env.NSBOX_STATE_DIR}`;
  for (let p = pid, depth = 0; p > 1 && depth < 64; depth++) {
    if (p === process.pid) return true;
    try {
      if (readFileSync(`/proc/${p}/environ`, 'latin1').split('\0').includes(marker)) return true;
      p = Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return false;
    }
  }
  return false;
}

function cgroupProcs(dir: string): number[] {
  try {
    return readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** What this test left since `before`: its container processes, new nsbox cgroups (not another test's), mounts. */
export async function leftovers(before: ReturnType<typeof snapshot>): Promise<string[]> {
  let found: string[] = [];
  for (let i = 0; i < 50; i++) {
    const now = snapshot();
    const procs = [...now.procs].filter((p) => !before.procs.has(p) && ours(p));
    const cgroups = now.cgroups
      .filter((c) => !before.cgroups.includes(c))
      .filter((c) => cgroupProcs(c).every((p) => ours(p)));
    found = [
      ...procs.map((p) => `process ${p}`),
      ...cgroups.map((c) => `cgroup ${c}`),
      ...(now.mounts > before.mounts ? [`mounts ${before.mounts} -> ${now.mounts}`] : []),
    ];
    if (found.length === 0) return [];
    await new Promise((r) => setTimeout(r, 100));
  }
  return found;
}
