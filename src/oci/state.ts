// nsbox-runtime's state: ROOT/ID/state.json (what create saved), ROOT/ID/exec.fifo (present while
// the container is held before exec), ROOT/ID/lock. The status is not saved but read from the
// process, the FIFO and the freezer, so it cannot go stale when nobody is left to update it.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { isAlive, procStat } from '../state/proc.js';
import { writeAtomic } from './files.js';
import type { SavedStep } from '../plan/json.js';
import type { Hook } from './config.js';

export type OciStatus = 'creating' | 'created' | 'running' | 'stopped' | 'paused';

export interface SavedCgroup {
  name: string;
  dirs: { path: string; version: 1 | 2; uses: string[] }[];
}

export interface Saved {
  ociVersion: string;
  id: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations: Record<string, string>;
  /** process.args (for `nsbox ps`). */
  command?: string[];
  /** 0 until the process exists. */
  pid: number;
  pidStart: number;
  /** The process that runs create (while the status is creating). */
  creator: { pid: number; start: number };
  cgroup: SavedCgroup | null;
  hooks?: { startContainer?: Hook[]; poststart: Hook[]; poststop: Hook[] };
  /** What exec starts with. */
  exec: { env: string[]; cwd: string; uid: number; gid: number; creds: SavedStep[] };
}

/** The runtime-spec state, plus runc's extra fields. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: OciStatus;
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations: Record<string, string>;
}

/** The runtime's --root when none is given (runc's place, under nsbox's name). */
export function defaultRoot(): string {
  return process.getuid?.() === 0 ? '/run/nsbox-runtime' : `${process.env.XDG_RUNTIME_DIR ?? '/tmp'}/nsbox-runtime`;
}

/** runc's rule for ids: letters, digits, _ + - . (and not . or ..). */
const ID_RE = /^[A-Za-z0-9_+.-]{1,1024}$/;

export function checkId(id: string | undefined): string {
  if (id === undefined || id === '') throw new NsboxError('a container id is required', { field: 'id' });
  if (!ID_RE.test(id) || id === '.' || id === '..')
    throw new NsboxError(`invalid container id: ${JSON.stringify(id)}`, { field: 'id' });
  return id;
}

export class Store {
  constructor(readonly root: string) {}

  ensure(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }

  dir(id: string): string {
    return `${this.root}/${checkId(id)}`;
  }

  fifo(id: string): string {
    return `${this.dir(id)}/exec.fifo`;
  }

  ids(): string[] {
    try {
      return readdirSync(this.root).filter(
        (n) => ID_RE.test(n) && n !== '.' && n !== '..' && existsSync(`${this.root}/${n}/state.json`),
      );
    } catch {
      return [];
    }
  }

  read(id: string): Saved | null {
    let s: Saved;
    try {
      s = JSON.parse(readFileSync(`${this.dir(id)}/state.json`, 'utf8')) as Saved;
    } catch {
      return null;
    }
    // What delete acts on (pids to kill, cgroups to empty and remove) is checked, not trusted.
    const pid = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
    const cgroupOk = (p: unknown) =>
      typeof p === 'string' && p.startsWith('/sys/fs/cgroup/') && !p.split('/').includes('..');
    const ok =
      s &&
      s.id === id &&
      pid(s.pid) &&
      pid(s.pidStart) &&
      pid(s.creator?.pid) &&
      pid(s.creator?.start) &&
      (s.cgroup === null || (Array.isArray(s.cgroup?.dirs) && s.cgroup.dirs.every((d) => cgroupOk(d.path))));
    if (!ok)
      throw new NsboxError(`container "${id}": damaged state file ${this.dir(id)}/state.json`, { kind: 'internal' });
    return s;
  }

  /** The saved state, or the error podman and containerd look for. */
  get(id: string): Saved {
    const s = this.read(id);
    if (!s) throw new NsboxError(`container "${id}" does not exist`, { field: 'id' });
    return s;
  }

  write(s: Saved): void {
    writeAtomic(`${this.dir(s.id)}/state.json`, `${JSON.stringify(s)}\n`);
  }

  status(s: Saved): OciStatus {
    if (!s.pid) return isAlive(s.creator.pid, s.creator.start) ? 'creating' : 'stopped';
    if (!isAlive(s.pid, s.pidStart)) return 'stopped';
    if (existsSync(this.fifo(s.id))) return 'created';
    return frozen(s.cgroup) ? 'paused' : 'running';
  }

  state(s: Saved): OciState {
    const status = this.status(s);
    return {
      ociVersion: s.ociVersion,
      id: s.id,
      status,
      pid: status === 'stopped' ? 0 : s.pid,
      bundle: s.bundle,
      rootfs: s.rootfs,
      created: s.created,
      owner: s.owner,
      annotations: s.annotations,
    };
  }
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The freezer's file, its frozen and thawed values, or null without a freezer. */
export function freezer(s: SavedCgroup | null): { file: string; frozen: string; thawed: string } | null {
  const v2 = s?.dirs.find((d) => d.version === 2 && existsSync(`${d.path}/cgroup.freeze`));
  if (v2) return { file: `${v2.path}/cgroup.freeze`, frozen: '1', thawed: '0' };
  const v1 = s?.dirs.find((d) => d.version === 1 && d.uses.includes('freezer'));
  return v1 ? { file: `${v1.path}/freezer.state`, frozen: 'FROZEN', thawed: 'THAWED' } : null;
}

function frozen(s: SavedCgroup | null): boolean {
  const f = freezer(s);
  if (!f) return false;
  const v = read(f.file);
  return v === f.frozen || (v === 'FREEZING' && f.frozen === 'FROZEN');
}

/** Every process of the container: its cgroup's, else PID 1 alone. */
export function processes(s: Saved): number[] {
  const d = s.cgroup?.dirs.find((x) => x.version === 2) ?? s.cgroup?.dirs[0];
  const text = d ? read(`${d.path}/cgroup.procs`) : undefined;
  if (text !== undefined) return text.split('\n').filter(Boolean).map(Number);
  return procStat(s.pid) && isAlive(s.pid, s.pidStart) ? [s.pid] : [];
}
