// Shared test helpers: run the CLI, and take stock of what the host has that nsbox could leak.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
export { ROOTFS } from './rootfs.js';

export const CLI = resolve(__dirname, '..', 'dist', 'run.js');

// Containers the tests start are registered in a state directory of this test process, not the
// host's /run/nsbox: names cannot clash with a user's containers or another test run's.
if (!process.env.NSBOX_STATE_DIR) {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-test-state-'));
  chmodSync(dir, 0o755); // reachable by the rootless tests' user too
  process.env.NSBOX_STATE_DIR = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, collecting its output; onStart gets its pid, input goes to its stdin. */
export function collect(
  cmd: string,
  argv: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; onStart?: (pid: number) => void } = {},
): Promise<CliResult> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', rej);
    p.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
    if (opts.onStart) opts.onStart(p.pid!);
    // The command may end (or refuse its arguments) without reading its input: no EPIPE then.
    p.stdin.on('error', () => {});
    p.stdin.end(opts.input ?? '');
  });
}

/** Runs `node dist/run.js ARGS...`, optionally feeding stdin and calling onStart with the child. */
export function nsbox(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; onStart?: (pid: number) => void } = {},
): Promise<CliResult> {
  return collect(process.execPath, ['--', CLI, ...args], opts); // '--': Node 20 scans all of argv for --env-file
}

/** Host PIDs of processes that live in a PID namespace other than ours. */
export function foreignPidnsProcesses(): Set<number> {
  const mine = readlinkSync('/proc/self/ns/pid');
  const out = new Set<number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/ns/pid`) !== mine) out.add(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Mount points of the host (our mount namespace). */
export function hostMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[4]);
}

/** Directories named nsbox* in the host's cgroup hierarchies (v1 and v2). */
export function nsboxCgroups(): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 3) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = `${dir}/${e.name}`;
      if (!e.name.startsWith('nsbox')) walk(p, depth + 1);
      else
        try {
          for (const sub of readdirSync(p, { withFileTypes: true }))
            if (sub.isDirectory()) out.push(`${p}/${sub.name}`);
        } catch {
          /* removed meanwhile (the last container under it ended) */
        }
    }
  };
  walk('/sys/fs/cgroup', 0);
  return out;
}

/** What the host has now; compare before and after a test to find leaks. */
export function snapshot() {
  return { procs: foreignPidnsProcesses(), mounts: hostMounts().length, cgroups: nsboxCgroups() };
}

/** Fails when a process, mount or cgroup appeared since `before`. */
export async function expectNothingLeft(before: ReturnType<typeof snapshot>): Promise<void> {
  // Processes killed a moment ago may still be on their way out.
  for (let i = 0; i < 50; i++) {
    const now = snapshot();
    const newProcs = [...now.procs].filter((p) => !before.procs.has(p));
    const newCgroups = now.cgroups.filter((c) => !before.cgroups.includes(c));
    if (newProcs.length === 0 && now.mounts === before.mounts && newCgroups.length === 0) return;
    if (i === 49) {
      throw new Error(
        `left behind: processes ${JSON.stringify(newProcs)}, mounts ${before.mounts} -> ${now.mounts}, cgroups ${JSON.stringify(newCgroups)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
