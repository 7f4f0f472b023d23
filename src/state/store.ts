// Container state on disk, following the OCI runtime's life cycle:
// creating -> created -> running -> stopped. The monitor (the process that started the
// container) writes each step; any command that finds the monitor dead cleans up after it.
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import type { SavedStep } from '../plan/json.js';
import type { SignalMode } from '../signals.js';
import * as native from '../native.js';
import { ensureRoot, Lock, stateRoot, withLock, writeAtomic } from './dir.js';
import { isAlive, openPidfd, procStat } from './proc.js';

export type Status = 'creating' | 'created' | 'running' | 'stopped';

/** A plan op saved for exec to replay (bytes as base64). */
export interface ContainerState {
  id: string;
  name: string;
  status: Status;
  rootfs: string;
  command: string[];
  hostname: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Host pid of the container's PID 1 (0 until it exists) and its start time in clock ticks. */
  pid: number;
  pidStart: number;
  /** The process holding the container's pidfd: the detached monitor, or the `run` CLI. */
  monitor: { pid: number; start: number };
  detached: boolean;
  /** Removed when it stops (`--rm`, and every foreground run). */
  autoRemove: boolean;
  init: boolean;
  tty: boolean;
  /** How signals PID 1 has no handler for are taken (src/signals.ts); absent: 'process'. */
  signals?: SignalMode;
  /** The signal `kill` or `stop` ended PID 1 for, in 'process' mode: reported in place of SIGKILL. */
  killedBy?: number;
  /** How it ended. */
  exit?: { code: number | null; signal: string | null; status: number; oomKilled: boolean };
  /** Why it stopped when it did not end by itself (e.g. the monitor was killed). */
  error?: string;
  /** What `exec` starts with: the container's environment, working directory and credentials. */
  exec: { env: string[]; cwd: string; creds: SavedStep[] };
  logLimit: number;
}

export const root = (): string => stateRoot();
export const dirOf = (id: string, r = root()): string => `${r}/${id}`;
const lockPath = (id: string, r = root()) => `${r}/${id}/lock`;
const ID_RE = /^[0-9a-f]{12}$/;

export function readState(id: string, r = root()): ContainerState | null {
  try {
    return JSON.parse(readFileSync(`${dirOf(id, r)}/state.json`, 'utf8')) as ContainerState;
  } catch {
    return null;
  }
}

export function writeState(st: ContainerState, r = root()): void {
  writeAtomic(`${dirOf(st.id, r)}/state.json`, `${JSON.stringify(st, null, 1)}\n`);
}

/**
 * Make the container's directory and claim its name. The name is unique while the container
 * exists: a second claim fails, unless the first one's directory is gone.
 */
export function createEntry(st: ContainerState, r = root()): void {
  ensureRoot(r);
  withLock(`${r}/.lock`, () => {
    const link = `${r}/names/${st.name}`;
    let owner: string | null = null;
    try {
      owner = readlinkSync(link);
    } catch { /* free */ }
    if (owner !== null) {
      if (existsSync(`${r}/${owner}/state.json`)) {
        throw new NsboxError(`the name "${st.name}" is already in use by container ${owner} (remove it with: nsbox rm ${st.name})`, { step: 'name' });
      }
      unlinkSync(link);
    }
    mkdirSync(dirOf(st.id, r), { mode: 0o700 });
    writeFileSync(lockPath(st.id, r), '', { mode: 0o600 });
    writeState(st, r);
    symlinkSync(st.id, link);
  });
}

/** Remove the container's name and directory (the caller holds its lock or knows it is dead). */
export function removeEntry(st: ContainerState, r = root()): void {
  withLock(`${r}/.lock`, () => {
    const link = `${r}/names/${st.name}`;
    try {
      if (readlinkSync(link) === st.id) unlinkSync(link);
    } catch { /* already gone */ }
    removeDir(dirOf(st.id, r), r);
  });
}

/** Out of sight at once (a rename), then deleted: no command can recreate a file in it meanwhile. */
function removeDir(dir: string, r: string): void {
  const trash = `${r}/.trash-${process.pid}-${dir.slice(dir.lastIndexOf('/') + 1)}`;
  try {
    renameSync(dir, trash);
  } catch {
    return; // already gone
  }
  rmSync(trash, { recursive: true, force: true });
}

/** Run fn under the container's lock, with its current state (null if it was removed meanwhile). */
export function locked<T>(id: string, fn: (st: ContainerState | null) => T, r = root()): T {
  let l: Lock;
  try {
    l = Lock.take(lockPath(id, r), false);
  } catch {
    return fn(null); // removed
  }
  try {
    return fn(readState(id, r));
  } finally {
    l.unlock();
  }
}

/** Update the state under the lock; a no-op when the container was removed. */
export function update(id: string, change: (st: ContainerState) => void, r = root()): ContainerState | null {
  return locked(id, (st) => {
    if (!st) return null;
    change(st);
    writeState(st, r);
    return st;
  }, r);
}

export function isActive(st: ContainerState): boolean {
  return st.status !== 'stopped';
}

/** The container's PID 1 runs (same pid, same start time). */
export function containerAlive(st: ContainerState): boolean {
  return isActive(st) && isAlive(st.pid, st.pidStart);
}

const cleaning: Promise<unknown>[] = [];

/** The cgroups a dead monitor made for the container are emptied and removed (the command's
 *  process lives until that is done; `settled()` waits for it). */
function cleanCgroups(id: string): void {
  cleaning.push(import('../exec/cgroup.js').then((m) => m.removeCgroupsOf(id)).catch(() => {}));
}

/** Resolves once the clean-up started by this process is done. */
export function settled(): Promise<unknown> {
  return Promise.all(cleaning);
}

/**
 * A command that finds a container whose monitor is dead cleans up: kill what is left of the
 * container, record that it stopped, and remove it if it was to be removed. Returns the state
 * as it is now, or null once removed. Skips containers someone else is working on.
 */
export function reap(st: ContainerState, r = root()): ContainerState | null {
  if (!isActive(st) || isAlive(st.monitor.pid, st.monitor.start)) return st;
  let l: Lock | null;
  try {
    l = Lock.try(lockPath(st.id, r), false);
  } catch {
    return null; // removed meanwhile
  }
  if (!l) return st;
  try {
    const now = readState(st.id, r);
    if (!now) return null;
    if (!isActive(now) || isAlive(now.monitor.pid, now.monitor.start)) return now;
    const fd = openPidfd(now.pid, now.pidStart);
    if (fd !== null) {
      try {
        native.pidfdSendSignal(fd, 9);
      } catch { /* ended meanwhile */ }
      closeSync(fd);
    }
    cleanCgroups(now.id);
    now.status = 'stopped';
    now.finishedAt = new Date().toISOString();
    now.error = now.pid ? 'the monitor process died; the container was killed' : 'the monitor process died while creating the container';
    if (now.autoRemove || !now.pid) {
      removeEntry(now, r);
      return null;
    }
    writeState(now, r);
    return now;
  } finally {
    l.unlock();
  }
}

/** Every container, stale ones cleaned first. */
export function list(r = root()): ContainerState[] {
  let ids: string[];
  try {
    const entries = readdirSync(r);
    ids = entries.filter((e) => ID_RE.test(e));
    // A removal that died halfway.
    for (const e of entries) {
      if (e.startsWith('.trash-') && !procStat(Number(e.split('-')[1]))) rmSync(`${r}/${e}`, { recursive: true, force: true });
    }
  } catch {
    return [];
  }
  const out: ContainerState[] = [];
  for (const id of ids) {
    let st = readState(id, r);
    if (!st) {
      dropOrphanDir(id, r);
      continue;
    }
    st = reap(st, r);
    if (st) out.push(st);
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

/**
 * A directory without state.json is a creation that died before its first write. createEntry makes
 * the directory and writes state.json under the global lock: holding it, we see no creation halfway.
 */
function dropOrphanDir(id: string, r: string): void {
  withLock(`${r}/.lock`, () => {
    if (!readState(id, r)) removeDir(dirOf(id, r), r);
  });
}

/** Find a container by name, id or unique id prefix; stale state is cleaned first. */
export function find(ref: string, r = root()): ContainerState {
  let id: string | null = null;
  try {
    id = readlinkSync(`${r}/names/${ref}`);
  } catch { /* not a name */ }
  if (!id || !readState(id, r)) {
    id = null;
    if (/^[0-9a-f]{1,12}$/.test(ref)) {
      let ids: string[] = [];
      try {
        ids = readdirSync(r).filter((e) => ID_RE.test(e) && e.startsWith(ref));
      } catch { /* no state yet */ }
      if (ids.length > 1) throw new NsboxError(`container id prefix "${ref}" is ambiguous: ${ids.join(', ')}`);
      if (ids.length === 1) id = ids[0];
    }
  }
  const st = id ? readState(id, r) : null;
  const now = st && reap(st, r);
  if (!now) throw new NsboxError(`no such container: ${ref}`, { step: 'container' });
  return now;
}

/** A pidfd for the container's PID 1 if it is running, else null. */
export function pidfdOf(st: ContainerState): number | null {
  if (!isActive(st) || !st.pid) return null;
  return openPidfd(st.pid, st.pidStart);
}

/** Start time of this process, for `monitor`. */
export function selfStart(): number {
  return procStat(process.pid)!.start;
}
