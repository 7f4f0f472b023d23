// How a detached container ended, as its nsbox-monitor (native/monitor.c) recorded it in ID/exit: the raw
// wait status of PID 1, the end time and PID 1's usage. Read by the clean-up step it runs, and by any
// command that finds the monitor dead after it wrote the record.
import { closeSync, fstatSync, readSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { ExitStatus } from '../plan/part.js';
import { signalName } from '../signals.js';
import { type Dir, O_READ } from './dir.js';
import type { ContainerState } from './store.js';

export interface ExitRecord {
  status: number;
  finishedAt: string;
  userUs: number;
  systemUs: number;
  maxRssKb: number;
}

const isCount = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** ID/exit of the open directory, or null when there is none (or it is not what the monitor writes). */
export function readExit(d: Dir): ExitRecord | null {
  let fd: number;
  try {
    fd = d.open('exit', O_READ);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > 4096) return null;
    const buf = Buffer.alloc(st.size);
    const r = JSON.parse(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString()) as ExitRecord;
    const ok =
      isCount(r.status) &&
      r.status <= 0xffff &&
      typeof r.finishedAt === 'string' &&
      RFC3339.test(r.finishedAt) &&
      isCount(r.userUs) &&
      isCount(r.systemUs) &&
      isCount(r.maxRssKb);
    return ok ? r : null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** A raw wait status (WIFEXITED / WIFSIGNALED) as nsbox reports it. */
export function exitOf(r: ExitRecord): Omit<ExitStatus, 'usage'> {
  const sig = r.status & 0x7f;
  if (sig === 0)
    return { code: (r.status >> 8) & 0xff, signal: null, status: (r.status >> 8) & 0xff, oomKilled: false };
  const name = signalName(sig) ?? (`SIG${sig}` as NodeJS.Signals);
  return { code: null, signal: name, status: 128 + sig, oomKilled: false };
}

export const SIGKILL = osConstants.signals.SIGKILL;

/** Record how the container ended (in its state, under its lock). */
export function markStopped(
  s: ContainerState,
  exit: Omit<ExitStatus, 'usage'> | null,
  at: string,
  error?: string,
): void {
  s.status = 'stopped';
  s.finishedAt = at;
  if (exit) s.exit = { code: exit.code, signal: exit.signal, status: exit.status, oomKilled: exit.oomKilled };
  // `kill`/`stop` ended PID 1 for a signal it had no handler for: say that signal, as for a process.
  if (s.exit?.signal === 'SIGKILL' && s.killedBy) {
    s.exit = { ...s.exit, signal: signalName(s.killedBy), status: 128 + s.killedBy };
  }
  if (error) s.error = error;
}
