// A detached container's output, as its nsbox-monitor (native/monitor.c) writes it: `log`, and `log.1`
// holding the previous `log` once that reached the limit, so at most twice the limit is kept. Each line of
// the files is a record in the CRI log format (as conmon writes it for Kubernetes):
//   2026-12-03T10:21:25.004827173Z stdout F text     (F: the text ends a line; P: a piece of a longer one)
// Files are reached through the container's open, checked directory (see dir.ts), never a symlink.
import { closeSync, fstatSync, lstatSync, readSync, watch } from 'node:fs';
import { parseBytes } from '../size.js';
import { type Dir, O_READ } from './dir.js';

export const DEFAULT_LOG_LIMIT = 1 << 20;

export type Stream = 'stdout' | 'stderr';

export interface LogRecord {
  /** RFC 3339 in UTC with nanoseconds: strings of one length, so they compare as the times do. */
  time: string;
  stream: Stream;
  /** The text ends a line (F); else it is a piece of one (P). */
  full: boolean;
  text: Buffer;
}

const HEAD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([FP]) /;

/** Records of `data` (whole lines only); `used` is how many bytes they took (a last line being written is left). */
export function parseRecords(data: Buffer): { records: LogRecord[]; used: number } {
  const records: LogRecord[] = [];
  let pos = 0;
  for (;;) {
    const nl = data.indexOf(10, pos);
    if (nl < 0) break;
    const m = HEAD.exec(data.toString('latin1', pos, Math.min(nl, pos + 48)));
    if (m) {
      const text = data.subarray(pos + m[0].length, nl);
      records.push({ time: m[1], stream: m[2] as Stream, full: m[3] === 'F', text });
    }
    pos = nl + 1;
  }
  return { records, used: pos };
}

/** Bytes of `path` from `from` on, or null when there is no such file. */
function readFrom(dir: Dir, name: string, from: number): { data: Buffer; ino: number; size: number } | null {
  let fd: number;
  try {
    fd = dir.open(name, O_READ);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return null;
    const len = Math.max(0, st.size - from);
    const data = Buffer.alloc(len);
    let n = 0;
    while (n < len) {
      const r = readSync(fd, data, n, len - n, from + n);
      if (r === 0) break;
      n += r;
    }
    return { data: data.subarray(0, n), ino: st.ino, size: from + n };
  } finally {
    closeSync(fd);
  }
}

/** Every record kept, oldest first. `at` is where the whole records of `log` ended, for followLog. */
export function readLog(dir: Dir): { records: LogRecord[]; at: { ino: number; size: number } } {
  const old = parseRecords(readFrom(dir, 'log.1', 0)?.data ?? Buffer.alloc(0)).records;
  const cur = readFrom(dir, 'log', 0);
  const now = parseRecords(cur?.data ?? Buffer.alloc(0));
  return { records: [...old, ...now.records], at: { ino: cur?.ino ?? 0, size: now.used } };
}

/** The records of the last `n` lines to end (a line: a stream's P records up to its F, or to the end). */
export function tailRecords(records: LogRecord[], n: number): LogRecord[] {
  if (n <= 0) return [];
  const open: Record<Stream, number> = { stdout: -1, stderr: -1 };
  const ends: number[] = []; // per line: the index of its last record
  const lineOf = records.map((r, i) => {
    if (open[r.stream] < 0) open[r.stream] = ends.push(i) - 1;
    const line = open[r.stream];
    ends[line] = i;
    if (r.full) open[r.stream] = -1;
    return line;
  });
  if (ends.length <= n) return records;
  const from = [...ends].sort((a, b) => b - a)[n - 1];
  return records.filter((_, i) => ends[lineOf[i]] >= from);
}

function openIno(dir: Dir, name: string): { fd: number; ino: number } | null {
  try {
    const fd = dir.open(name, O_READ);
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      return null;
    }
    return { fd, ino: st.ino };
  } catch {
    return null;
  }
}

/**
 * Follow `log` from `at` as it grows (inotify on the directory, no polling), across rotations,
 * calling out() with new records; stop() reads what is left and stops. The open file is read
 * to its end even once rotated or removed.
 */
export function followLog(
  dir: Dir,
  at: { ino: number; size: number },
  out: (r: LogRecord[]) => void,
): { stop(): void } {
  let cur = openIno(dir, 'log');
  let pos = cur && cur.ino === at.ino ? at.size : 0;
  let rest = Buffer.alloc(0);
  const buf = Buffer.alloc(65536);
  const readRest = () => {
    for (;;) {
      const n = readSync(cur!.fd, buf, 0, buf.length, pos);
      if (n === 0) return;
      pos += n;
      const data = rest.length ? Buffer.concat([rest, buf.subarray(0, n)]) : buf.subarray(0, n);
      const got = parseRecords(data);
      // The records point into `buf`, reused by the next read: copied out first.
      out(got.records.map((r) => ({ ...r, text: Buffer.from(r.text) })));
      rest = Buffer.from(data.subarray(got.used));
    }
  };
  const drain = () => {
    for (;;) {
      if (cur) readRest();
      let ino = 0;
      try {
        ino = lstatSync(dir.at('log')).ino;
      } catch {
        /* rotated right now, or removed */
      }
      if (!ino || ino === cur?.ino) return;
      // Rotated: the old file was read to its end. Next comes log.1 if it is a later file (the log
      // rotated twice since), else the new log, each from its start.
      const older = cur ? openIno(dir, 'log.1') : null;
      const next = older && older.ino !== cur!.ino ? older : openIno(dir, 'log');
      if (older && older !== next) closeSync(older.fd);
      if (cur) closeSync(cur.fd);
      cur = next;
      pos = 0;
      rest = Buffer.alloc(0);
    }
  };
  const w = watch(dir.self, () => drain());
  w.on('error', () => {}); // the directory was removed (--rm): stop() still reads the open file
  drain();
  return {
    stop() {
      w.close();
      drain();
      if (cur) closeSync(cur.fd);
      cur = null;
    },
  };
}

/** "512k", "1m", "4096": a size in bytes, at least 1 KiB. */
export function parseLogSize(v: string): number | null {
  const n = parseBytes(v); // the one size grammar (src/size.ts)
  return n !== null && n >= 1024 ? n : null;
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/**
 * A --since/--until value as docker takes it, as a record time (RFC 3339, nanoseconds, UTC): an RFC 3339
 * time or date, Unix seconds (with a fraction), or a duration before now (10m, 1h30m, 2.5s). Null if none.
 */
export function parseLogTime(v: string, now = Date.now()): string | null {
  let ms: number;
  let nanos = '';
  if (/^\d+(\.\d{1,9})?$/.test(v)) {
    const [s, f = ''] = v.split('.');
    ms = Number(s) * 1000;
    nanos = f.padEnd(9, '0');
  } else if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    let d = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) d += Number(m[1]) * UNITS[m[2]];
    ms = Math.floor(now - d);
  } else if (/^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$/i.test(v)) {
    // Without a zone: local time, as docker takes it. An exact fraction is kept to the nanosecond.
    const f = /:\d\d\.(\d+)/.exec(v)?.[1];
    ms = Date.parse(v.length === 10 ? `${v}T00:00:00` : v.replace(' ', 'T'));
    if (f) nanos = f.slice(0, 9).padEnd(9, '0');
  } else return null;
  // Date's range (±8.64e15 ms); beyond it there is no such time.
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return null;
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // whole seconds, then the fraction
  if (!nanos) nanos = String(Math.round((ms % 1000) * 1e6)).padStart(9, '0');
  return `${iso.slice(0, 19)}.${nanos}Z`;
}
