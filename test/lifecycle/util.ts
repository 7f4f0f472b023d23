// Helpers for the life-cycle tests: a state directory of their own (NSBOX_STATE_DIR), the CLI
// run against it, and a check that no container, state entry, process, mount or cgroup is left.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, expect } from 'vitest';
import { CLI, hostMounts, nsbox, nsboxCgroups, type CliResult } from '../helpers.js';
export { ROOTFS } from '../helpers.js';

export const STATE = mkdtempSync(join(tmpdir(), 'nsbox-state-'));
export const env: NodeJS.ProcessEnv = { ...process.env, NSBOX_STATE_DIR: STATE };

/** `nsbox ARGS` against the test state directory. */
export function cli(
  args: string[],
  opts: { input?: string; onStart?: (pid: number) => void } = {},
): Promise<CliResult> {
  return nsbox(args, { ...opts, env });
}

/** `nsbox ARGS` that must succeed; its stdout. */
export async function ok(args: string[], input?: string): Promise<string> {
  const r = await cli(args, { input });
  noteRunning();
  if (r.code !== 0) throw new Error(`nsbox ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A CLI process left running (e.g. a foreground run or a blocking exec). */
export function startCli(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--', CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function stateJson(id: string) {
  return JSON.parse(readFileSync(`${STATE}/${id}/state.json`, 'utf8'));
}

/** Entries of the state directory besides .lock and names/, and the names. */
export function stateEntries(): { ids: string[]; names: string[] } {
  let ids: string[] = [];
  let names: string[] = [];
  try {
    ids = readdirSync(STATE).filter((e) => /^[0-9a-f]{12}$/.test(e));
    names = readdirSync(`${STATE}/names`);
  } catch {
    /* not made yet */
  }
  return { ids, names };
}

/** Wait (polling, with a generous deadline) until fn() is truthy; the test fails on timeout. */
export async function until<T>(fn: () => T | Promise<T>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function alive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /.test(s);
  } catch {
    return false;
  }
}

/** Ids of every container this file's tests created (the state directory is watched), and the
 *  PID namespaces of those seen running: the leak check looks at these only, so other developers'
 *  containers on the same host do not count. */
const seenIds = new Set<string>();
const seenPidns = new Set<string>();
mkdirSync(`${STATE}/names`, { recursive: true });
const watcher = watch(STATE, (_e, f) => {
  if (f && /^[0-9a-f]{12}$/.test(String(f))) seenIds.add(String(f));
});
watcher.unref();

function noteRunning(): void {
  for (const id of stateEntries().ids) {
    seenIds.add(id);
    try {
      // Only while it runs, and only if the pid is still its process: pid_max is 32768 here, and a
      // reused pid would add the host's PID namespace.
      const st = stateJson(id);
      if (!st.pid || st.status === 'stopped') continue;
      const ns = readlinkSync(`/proc/${st.pid}/ns/pid`);
      const stat = readFileSync(`/proc/${st.pid}/stat`, 'utf8');
      const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
      if (start === st.pidStart && ns !== readlinkSync('/proc/self/ns/pid')) seenPidns.add(ns);
    } catch {
      /* not yet, or gone */
    }
  }
}

function ourProcesses(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (seenPidns.has(readlinkSync(`/proc/${e}/ns/pid`))) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

const ourCgroups = () => nsboxCgroups().filter((c) => seenIds.has(c.slice(c.lastIndexOf('/') + 1).split('.')[0]));

/** Every test starts and ends with an empty state directory and nothing of its containers left. */
export function lifecycleHooks(): void {
  let mounts = 0;
  beforeEach(() => {
    mounts = hostMounts().length;
  });
  afterEach(async () => {
    noteRunning();
    const ids = (await cli(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await cli(['rm', '-f', ...ids]);
    await until(() => ourMonitors().length === 0, 'the monitors to end');
    await until(() => ourProcesses().length === 0, "the containers' processes to end");
    await until(() => ourCgroups().length === 0, `the containers' cgroups to go (${ourCgroups().join(', ')})`);
    expect(hostMounts().length).toBe(mounts);
    // Monitors of --rm containers remove their entries as they end.
    await until(() => stateEntries().ids.length === 0 && stateEntries().names.length === 0, 'an empty state directory');
    expect(stateEntries()).toEqual({ ids: [], names: [] });
    // No temporary file, no half-removed entry (.cleanup: the monitors' clean-up slots, native/monitor.c).
    expect(
      readdirSync(STATE)
        .filter((f) => f !== '.cleanup')
        .sort(),
    ).toEqual(['.lock', 'names']);
  });
  afterAll(() => {
    watcher.close();
    rmSync(STATE, { recursive: true, force: true });
  });
}

/** Monitor processes of this test file's containers (their title and NSBOX_STATE_DIR tell). */
export function ourMonitors(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (!readFileSync(`/proc/${e}/cmdline`, 'utf8').startsWith('nsbox-monitor')) continue;
      if (readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(`NSBOX_STATE_DIR=${STATE}`))
        out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}
