// The one parser of /proc/PID/stat: what the kernel says about a process. Its start time names a
// process for good (with the pid), since pids are reused.
import { closeSync, constants, openSync, readSync } from 'node:fs';

export interface ProcStat {
  state: string;
  ppid: number;
  /** Clock ticks since boot: with the pid, it names one process for good. */
  start: number;
  /** Clock ticks (100 Hz): the process's own, and its reaped children's. */
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  rssPages: number;
  comm: string;
}

/** Parses the text of /proc/PID/stat; the command name may hold spaces and parentheses. */
export function parseStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  // Fields after "(comm)": state is 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17, starttime 22, rss 24.
  return {
    state: f[0],
    ppid: Number(f[1]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    cutime: Number(f[13]),
    cstime: Number(f[14]),
    start: Number(f[19]),
    rssPages: Number(f[21]),
    comm: text.slice(text.indexOf('(') + 1, close),
  };
}

const statBuf = Buffer.alloc(4096); // /proc/PID/stat is one line of well under 1 KiB

/** /proc/PID/stat, or null when there is no such process. One read into a reused buffer: `ps` and
 *  `stats` ask for every container's processes. */
export function procStat(pid: number | 'self'): ProcStat | null {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/stat`, constants.O_RDONLY);
  } catch {
    return null;
  }
  try {
    return parseStat(statBuf.toString('utf8', 0, readSync(fd, statBuf, 0, statBuf.length, 0)));
  } catch {
    return null; // ended between the open and the read (ESRCH)
  } finally {
    closeSync(fd);
  }
}

let owner: { pid: number; start: number } | undefined;

/** The process that owns what this one makes for a container (its cgroups, its network record): this
 *  process, or the container's nsbox-monitor when this is a detached container's set-up step. Stale
 *  clean-ups undo what an owner that died left. */
export function ownerProcess(): { pid: number; start: number } {
  owner ??= { pid: process.pid, start: procStat('self')?.start ?? 0 };
  return owner;
}

export function setOwnerProcess(o: { pid: number; start: number }): void {
  owner = o;
}
