// Container state on disk, following the OCI runtime's life cycle:
// creating -> created -> running -> stopped. The monitor (the process that started the
// container) writes each step; any command that finds the monitor dead cleans up after it.
import {
  closeSync,
  constants as C,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { NsboxError } from '../errors.js';
import { removeRwLayer } from '../images/rwlayer.js';
import type { SavedStep } from '../plan/json.js';
import type { SignalMode } from '../signals.js';
import * as native from '../native.js';
import { checkName } from '../name.js';
import { checkOwned, type Dir, Lock, O_READ, openRoot, withLock, writeAtomic, writeNew } from './dir.js';
import { isAlive, openPidfd, procStat } from './proc.js';
import { exitOf, markStopped, readExit } from './exit.js';

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
  /** Its limits and mounts as given (for inspect). */
  config?: { limits?: Record<string, unknown>; mounts?: Record<string, unknown>[] };
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

const ID_RE = /^[0-9a-f]{12}$/;
const STATE_MAX = 4 << 20;

/** The state root if it exists (checked: see dir.ts), else null. */
export const root = (): Dir | null => openRoot(false);

function checkId(id: string): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new NsboxError(`invalid container id: ${JSON.stringify(id)}`, { step: 'id' });
  }
  return id;
}

/** The container's directory, open and checked (the caller closes it); ENOENT when it is gone. */
export function openEntry(id: string, r: Dir): Dir {
  return r.sub(checkId(id));
}

/** Runs fn on the container's open directory; null when there is none. */
function inEntry<T>(id: string, r: Dir | null, fn: (d: Dir) => T): T | null {
  if (!r) return null;
  let d: Dir;
  try {
    d = openEntry(id, r);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    return fn(d);
  } finally {
    d.close();
  }
}

const isCount = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;

/** A state file as nsbox writes it; anything else is treated as no state. */
function valid(st: ContainerState, id: string, exec: boolean): boolean {
  return (
    !!st &&
    typeof st === 'object' &&
    st.id === id &&
    typeof st.name === 'string' &&
    isCount(st.pid) &&
    isCount(st.pidStart) &&
    !!st.monitor &&
    isCount(st.monitor.pid) &&
    isCount(st.monitor.start) &&
    Array.isArray(st.command) &&
    typeof st.status === 'string' &&
    (!exec || (!!st.exec && typeof st.exec === 'object' && Array.isArray(st.exec.creds)))
  );
}

/**
 * state.json is one JSON object on two lines: the state, then `exec` (what exec starts from: most of
 * the bytes) as its last member. Read without `exec` (a list: `ps`, `stats`), only the first line is
 * parsed; any reader (an earlier nsbox's too) can parse the whole. A file whose first line is not the
 * state (an earlier nsbox's, indented) is parsed whole.
 */
function parseState(text: Buffer, exec: boolean): ContainerState {
  const nl = text.indexOf(10);
  if (exec || nl <= 1 || text[nl - 1] !== 0x2c) return JSON.parse(text.toString('utf8'));
  const st = JSON.parse(`${text.toString('utf8', 0, nl - 1)}}`) as ContainerState;
  st.exec = LISTED;
  return st;
}

/** `exec` of a state read without it: empty, and refused by writeState (it would lose the real one). */
const LISTED: ContainerState['exec'] = Object.freeze({
  env: Object.freeze([]) as unknown as string[],
  cwd: '/',
  creds: Object.freeze([]) as unknown as SavedStep[],
});

/** The state file of a directory: a regular file of ours, not through a symlink, bounded in size. */
function readStateIn(d: Dir, id: string, exec = true): ContainerState | null {
  let fd: number;
  try {
    fd = d.open('state.json', O_READ);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new NsboxError(`refusing the state ${d.path}/state.json: a symlink`, { step: 'state' });
    throw e;
  }
  try {
    const size = checkOwned(fd, `${d.path}/state.json`, 'file').size;
    if (size > STATE_MAX) return null;
    const buf = Buffer.alloc(size);
    let n = 0;
    while (n < size) {
      const got = readSync(fd, buf, n, size - n, n);
      if (got === 0) break;
      n += got;
    }
    const st = parseState(buf.subarray(0, n), exec);
    return valid(st, id, exec) ? st : null;
  } catch (e) {
    if (e instanceof NsboxError) throw e;
    return null;
  } finally {
    closeSync(fd);
  }
}

/** The container's state; without `exec` (what it starts from) for lists: it is then empty, never written. */
export function readState(id: string, r = root(), exec = true): ContainerState | null {
  return inEntry(id, r, (d) => readStateIn(d, id, exec));
}

function stateText(st: ContainerState): string {
  if (st.exec === LISTED) throw new Error('internal: a container state read without exec is not written back');
  const { exec, ...rest } = st; // JSON.stringify escapes newlines in strings: this one ends the first line
  return `${JSON.stringify(rest).slice(0, -1)},\n"exec":${JSON.stringify(exec)}}\n`;
}

export function writeState(st: ContainerState, r = root()): void {
  if (!r) throw new NsboxError('the state directory is gone', { step: 'state' });
  const d = openEntry(st.id, r);
  try {
    writeAtomic(d, 'state.json', stateText(st));
  } finally {
    d.close();
  }
}

/** Where names/NAME points, if it is a container id. */
function nameTarget(names: Dir, name: string): string | null {
  try {
    const id = readlinkSync(names.at(name));
    return ID_RE.test(id) ? id : null;
  } catch {
    return null;
  }
}

/** names/ of the root; made when `create` (by the first entry) and missing. */
function withNames<T>(r: Dir, fn: (names: Dir) => T, create = false): T {
  const names = r.sub('names', create ? 0o700 : undefined);
  try {
    return fn(names);
  } finally {
    names.close();
  }
}

/** A container's directory and its lock file, held open by the process that made them (closeEntry). */
export interface OpenEntry {
  dir: Dir;
  lock: number;
}

/**
 * Make the container's directory and claim its name. The name is unique while the container
 * exists: a second claim fails, unless the first one's directory is gone. Name and id are checked
 * before anything is touched. Returns the directory and its lock file open, for updateOpen().
 */
export function createEntry(st: ContainerState, r: Dir | null = null): OpenEntry {
  checkName(st.name);
  checkId(st.id);
  if (!r) r = openRoot(true)!;
  const root = r;
  return withLock(root, '.lock', () =>
    withNames(
      root,
      (names) => {
        // A free name (the usual case) is one lstat: no failed readlink and unlink.
        const there = lstatSync(names.at(st.name), { throwIfNoEntry: false });
        const owner = there ? nameTarget(names, st.name) : null;
        let taken = false;
        if (owner !== null) taken = inEntry(owner, root, (d) => readStateIn(d, owner, false) !== null) ?? false;
        if (taken) {
          const hint = `remove it with: nsbox rm ${st.name}`;
          throw new NsboxError(`the name "${st.name}" is already in use by container ${owner} (${hint})`, {
            step: 'name',
          });
        }
        if (there) unlinkSync(names.at(st.name)); // a stale name (or whatever else is there: names/ is ours)
        mkdirSync(root.at(st.id), { mode: 0o700 }); // a new directory: EEXIST for anything already there
        const d = openEntry(st.id, root);
        let lock = -1;
        try {
          lock = d.open('lock', C.O_RDWR | C.O_CREAT | C.O_EXCL);
          // Written in place, not renamed: a reader that meets it half-written takes the entry for a
          // creation that died, and drops it only under the global lock, held here until it is whole.
          writeNew(d, 'state.json', stateText(st));
          symlinkSync(st.id, names.at(st.name));
        } catch (e) {
          if (lock >= 0) closeSync(lock);
          d.close();
          throw e;
        }
        return { dir: d, lock };
      },
      true,
    ),
  );
}

export function closeEntry(e: OpenEntry): void {
  if (e.lock < 0) return;
  closeSync(e.lock);
  e.dir.close();
  e.lock = -1;
}

/**
 * update() through the open entry of the process that made it: the same lock and the same checks,
 * without finding and checking the directory again. A no-op once the container was removed.
 */
export function updateOpen(e: OpenEntry, id: string, change: (st: ContainerState) => void): ContainerState | null {
  if (e.lock < 0) return null; // closed: stopped or removed already
  const l = Lock.onOpen(e.lock);
  try {
    const st = readStateIn(e.dir, id);
    if (!st) return null;
    change(st);
    writeAtomic(e.dir, 'state.json', stateText(st));
    return st;
  } finally {
    l.unlock();
  }
}

/**
 * Remove the container's name and directory (the caller holds its lock or knows it is dead).
 * `image` false: the caller knows it ran from a directory, with no copy-on-write layer to remove.
 */
export function removeEntry(st: Pick<ContainerState, 'id' | 'name'>, r = root(), image = true): void {
  if (!r) return;
  const root = r;
  withLock(root, '.lock', () => {
    withNames(root, (names) => {
      if (NAME_OK(st.name) && nameTarget(names, st.name) === st.id) unlinkSync(names.at(st.name));
    });
    removeDir(st.id, root);
  });
  if (image) removeRwLayer(st.id); // a container from an image: its copy-on-write layer goes with it
}

const NAME_OK = (name: string) => {
  try {
    checkName(name);
    return true;
  } catch {
    return false;
  }
};

/** Out of sight at once (a rename), then deleted: no command can recreate a file in it meanwhile. */
function removeDir(id: string, r: Dir): void {
  const trash = `.trash-${process.pid}-${checkId(id)}`;
  try {
    renameSync(r.at(id), r.at(trash));
  } catch {
    return; // already gone
  }
  // A foreground run's entry holds just these two: three syscalls, not a recursive walk. Anything
  // else there (a log, a file of another version) is left to the recursive removal.
  const dir = r.at(trash);
  try {
    for (const f of ['state.json', 'lock']) {
      try {
        unlinkSync(`${dir}/${f}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    rmdirSync(dir);
    return;
  } catch {
    /* not only those */
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Run fn under the container's lock, with its current state (null if it was removed meanwhile). */
export function locked<T>(id: string, fn: (st: ContainerState | null) => T, r = root(), exec = true): T {
  let d: Dir | null = null;
  let l: Lock | null = null;
  try {
    d = r && openEntry(id, r);
    l = d && Lock.take(d, 'lock', false);
  } catch (e) {
    d?.close();
    if (e instanceof NsboxError) throw e;
    d = null;
  }
  if (!d || !l) return fn(null); // removed
  try {
    return fn(readStateIn(d, id, exec)); // the directory the lock is in, still open
  } finally {
    l.unlock();
    d.close();
  }
}

/** Update the state under the lock; a no-op when the container was removed. */
export function update(id: string, change: (st: ContainerState) => void, r = root()): ContainerState | null {
  return locked(
    id,
    (st) => {
      if (!st) return null;
      change(st);
      writeState(st, r);
      return st;
    },
    r,
  );
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

/** Its network (veth, address lease, port rules, namespace file: src/network/record.ts) is released. */
function cleanNetwork(id: string): void {
  cleaning.push(import('../network/record.js').then((m) => m.teardown(id)).catch(() => {}));
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
    const got = inEntry(st.id, r, (d) => ({ lock: Lock.try(d, 'lock', false) }));
    if (got === null) return null; // removed meanwhile
    l = got.lock; // null: someone is at it
  } catch (e) {
    if (e instanceof NsboxError) throw e;
    return null; // removed meanwhile
  }
  if (!l) return st;
  try {
    const now = readState(st.id, r);
    if (!now) return null;
    if (!isActive(now) || isAlive(now.monitor.pid, now.monitor.start)) return now;
    signalRecorded(now.pid, now.pidStart, 9);
    cleanCgroups(now.id);
    cleanNetwork(now.id);
    // The monitor recorded the end before it died (or before its clean-up step was killed): that end.
    const rec = inEntry(now.id, r, readExit);
    if (rec) markStopped(now, exitOf(rec), rec.finishedAt);
    else {
      now.status = 'stopped';
      now.finishedAt = new Date().toISOString();
      now.error = now.pid
        ? 'the monitor process died; the container was killed'
        : 'the monitor process died while creating the container';
    }
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

/** Signal the process of a record through a pidfd, only if it is still that process (pid and start time). */
function signalRecorded(pid: number, start: number, sig: number): void {
  const fd = openPidfd(pid, start);
  if (fd === null) return;
  try {
    native.pidfdSendSignal(fd, sig);
  } catch {
    /* ended meanwhile */
  }
  closeSync(fd);
}

/** Every container, stale ones cleaned first. */
export function list(r = root()): ContainerState[] {
  if (!r) return [];
  let ids: string[];
  try {
    const entries = readdirSync(r.self);
    ids = entries.filter((e) => ID_RE.test(e));
    // A removal that died halfway.
    for (const e of entries) {
      const m = /^\.trash-(\d+)-[0-9a-f]{12}$/.exec(e);
      if (m && !procStat(Number(m[1]))) rmSync(r.at(e), { recursive: true, force: true });
    }
  } catch {
    return [];
  }
  const out: ContainerState[] = [];
  for (const id of ids) {
    let st = readState(id, r, false);
    if (!st) {
      dropOrphanDir(id, r);
      continue;
    }
    st = reap(st, r);
    if (st) out.push(st);
  }
  // Code-point order (ISO times and hex ids sort right so): localeCompare's ICU collation took a tenth
  // of `ps` with 1,000 containers.
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return out.sort((a, b) => cmp(a.createdAt, b.createdAt) || cmp(a.id, b.id));
}

/**
 * A directory without state.json is a creation that died before its first write. createEntry makes
 * the directory and writes state.json under the global lock: holding it, we see no creation halfway.
 */
function dropOrphanDir(id: string, r: Dir): void {
  withLock(r, '.lock', () => {
    if (!readState(id, r)) removeDir(id, r);
  });
}

/** The id names/NAME points to; null also when there is no names/ yet (a state root nsbox did not make). */
function nameLookup(r: Dir, name: string): string | null {
  try {
    return withNames(r, (names) => nameTarget(names, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Find a container by name, id or unique id prefix; stale state is cleaned first. */
export function find(ref: string, r = root()): ContainerState {
  let st: ContainerState | null = null;
  const id = r && NAME_OK(ref) ? nameLookup(r, ref) : null;
  if (id) st = readState(id, r); // read once: the name's container, else an id (prefix)
  if (r && !st && /^[0-9a-f]{1,12}$/.test(ref)) {
    let ids: string[] = [];
    try {
      ids = readdirSync(r.self).filter((e) => ID_RE.test(e) && e.startsWith(ref));
    } catch {
      /* no state yet */
    }
    if (ids.length > 1) throw new NsboxError(`container id prefix "${ref}" is ambiguous: ${ids.join(', ')}`);
    if (ids.length === 1) st = readState(ids[0], r);
  }
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
