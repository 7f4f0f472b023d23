// Reading and writing cgroup files, with errors that name the file.
import { closeSync, openSync, readFileSync, writeSync, constants as fsConstants } from 'node:fs';
import { NsboxError, errnoInfo } from '../errors.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? '';
}

/** "Device or resource busy (EBUSY)" for a Node system error. */
export function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.errno === 'number') {
    const [name, msg] = errnoInfo(Math.abs(err.errno));
    return `${msg} (${name})`;
  }
  return String((e as Error)?.message ?? e);
}

/** One write(2) of data to an existing file; throws NsboxError naming what and where. */
export function writeFile(path: string, data: string, doing: string): void {
  let fd = -1;
  try {
    fd = openSync(path, fsConstants.O_WRONLY);
    writeSync(fd, data);
  } catch (e) {
    throw new NsboxError(`${doing}: cannot write "${data}" to ${path}: ${describe(e)}`, {
      code: errnoOf(e),
      step: 'cgroup',
    });
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

export function readFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A number file ('max' -> Infinity); undefined when missing. */
export function readNumber(path: string): number | undefined {
  const s = readFile(path)?.trim();
  if (s === undefined || s === '') return undefined;
  return s === 'max' ? Infinity : Number(s);
}

/** 'key value' lines (cpu.stat, memory.events, memory.oom_control) as a map. */
export function readKeyed(path: string): Map<string, number> | undefined {
  const s = readFile(path);
  if (s === undefined) return undefined;
  const m = new Map<string, number>();
  for (const line of s.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** PIDs in a cgroup.procs file. */
export function readPids(path: string): number[] {
  return (readFile(path) ?? '').split('\n').filter(Boolean).map(Number);
}
