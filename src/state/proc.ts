// What /proc says about a process: its start time (so a reused pid is not mistaken for it),
// its namespaces and its cgroups.
import { closeSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import * as native from '../native.js';

// The one /proc/PID/stat parser is src/proc.ts.
export { procStat, type ProcStat } from '../proc.js';
import { procStat } from '../proc.js';

/** The process that had this pid and start time still runs (a zombie counts as ended). */
export function isAlive(pid: number, start: number): boolean {
  if (!pid) return false;
  const st = procStat(pid);
  return !!st && st.start === start && st.state !== 'Z' && st.state !== 'X';
}

/** A pidfd for pid, only if it is still the process that started at `start`; else null. */
export function openPidfd(pid: number, start: number): number | null {
  if (!pid) return null;
  let fd: number;
  try {
    fd = native.pidfdOpen(pid);
  } catch {
    return null;
  }
  // Checked after opening: the pidfd now pins the process, so a match cannot go stale.
  if (isAlive(pid, start)) return fd;
  closeSync(fd);
  return null;
}

export const NAMESPACES = ['user', 'mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup', 'time'] as const;
export type NsName = (typeof NAMESPACES)[number];

/** The namespace's identity ("pid:[4026531836]"), or null. */
export function nsId(pid: number | 'self', ns: NsName): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/${ns}`);
  } catch {
    return null;
  }
}

/**
 * One scan of /proc serves every question asked in the same synchronous run (e.g. `stats` sampling each
 * of 1,000 containers): asking once per container would read every process's entry N times over.
 * Forgotten at the next microtask, so a later question sees processes started since.
 */
function scanned<T>(build: () => T): () => T {
  let v: T | null = null;
  return () => {
    if (v === null) {
      v = build();
      queueMicrotask(() => (v = null));
    }
    return v;
  };
}

const pids = () =>
  readdirSync('/proc')
    .filter((e) => e.charCodeAt(0) <= 57)
    .map(Number)
    .filter((p) => p > 0);

const byNs = Object.fromEntries(
  NAMESPACES.map((ns) => [
    ns,
    scanned(() => {
      const m = new Map<string, number[]>();
      for (const pid of pids()) {
        const id = nsId(pid, ns);
        if (id) (m.get(id) ?? m.set(id, []).get(id)!).push(pid);
      }
      return m;
    }),
  ]),
) as Record<NsName, () => Map<string, number[]>>;

/** Host pids of every process whose namespace `ns` is `id`. */
export function processesIn(ns: NsName, id: string): number[] {
  return [...(byNs[ns]().get(id) ?? [])].sort((a, b) => a - b);
}

const childrenOf = scanned(() => {
  const children = new Map<number, number[]>();
  for (const pid of pids()) {
    const st = procStat(pid);
    if (st) (children.get(st.ppid) ?? children.set(st.ppid, []).get(st.ppid)!).push(pid);
  }
  return children;
});

/** Host pids of pid and all its descendants. */
export function descendants(pid: number): number[] {
  const children = childrenOf();
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out.sort((a, b) => a - b);
}

/** "NSpid:" of /proc/PID/status: the pid in each nested PID namespace, outermost first. */
export function nsPids(pid: number): number[] {
  try {
    const m = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? m[1].trim().split(/\s+/).map(Number) : [pid];
  } catch {
    return [];
  }
}

/** Effective uid from /proc/PID/status. */
export function procUid(pid: number): number | null {
  try {
    const m = /^Uid:\s*\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Clock ticks per second (USER_HZ) is 100 on every Linux architecture Node runs on. */
export const CLK_TCK = 100;

/** Seconds since boot, for turning a start time into a date. */
export function uptime(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** Same file (device and inode)? For comparing namespace files and directories. */
export function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a),
      y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}
