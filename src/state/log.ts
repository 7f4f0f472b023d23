// A detached container's output: `log`, and `log.1` holding the previous `log` once that
// reached the limit, so at most twice the limit is kept.
// Files are reached through the container's open, checked directory (see dir.ts), never a symlink.
import { closeSync, constants as C, fstatSync, lstatSync, readSync, renameSync, watch, writeSync } from 'node:fs';
import { parseBytes } from '../size.js';
import { type Dir, O_READ } from './dir.js';

export const DEFAULT_LOG_LIMIT = 1 << 20;

export class LogWriter {
  private fd: number;
  private size = 0;

  constructor(
    private dir: Dir,
    private limit: number,
  ) {
    this.fd = dir.open('log', C.O_WRONLY | C.O_APPEND | C.O_CREAT);
    this.size = fstatSync(this.fd).size;
  }

  write(chunk: Buffer): void {
    if (chunk.length > this.limit) chunk = chunk.subarray(chunk.length - this.limit);
    if (this.size + chunk.length > this.limit) {
      closeSync(this.fd);
      renameSync(this.dir.at('log'), this.dir.at('log.1'));
      this.fd = this.dir.open('log', C.O_WRONLY | C.O_CREAT | C.O_TRUNC);
      this.size = 0;
    }
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off);
    this.size += chunk.length;
  }

  /** Closes the log and the directory it was given. */
  close(): void {
    closeSync(this.fd);
    this.dir.close();
  }
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

/** Everything kept, oldest first; with `tail`, only the last that many lines. `at` is where
 *  `log` ended when read, for followLog to go on from. */
export function readLog(dir: Dir, tail?: number): { data: Buffer; at: { ino: number; size: number } } {
  const old = readFrom(dir, 'log.1', 0)?.data ?? Buffer.alloc(0);
  const cur = readFrom(dir, 'log', 0);
  const all = Buffer.concat([old, cur?.data ?? Buffer.alloc(0)]);
  const at = { ino: cur?.ino ?? 0, size: cur?.size ?? 0 };
  if (tail === undefined) return { data: all, at };
  if (tail <= 0) return { data: Buffer.alloc(0), at };
  let end = all.length;
  if (end > 0 && all[end - 1] === 10) end--;
  let pos = end,
    lines = 0;
  while (pos > 0) {
    if (all[pos - 1] === 10 && ++lines === tail) break;
    pos--;
  }
  return { data: all.subarray(pos), at };
}

/** Read fd from pos to its end. */
function readRest(fd: number, pos: number, out: (b: Buffer) => void): number {
  const buf = Buffer.alloc(65536);
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) return pos;
    out(Buffer.from(buf.subarray(0, n)));
    pos += n;
  }
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
 * calling out() with new bytes; stop() reads what is left and stops. The open file is read
 * to its end even once rotated or removed.
 */
export function followLog(dir: Dir, at: { ino: number; size: number }, out: (b: Buffer) => void): { stop(): void } {
  let cur = openIno(dir, 'log');
  let pos = cur && cur.ino === at.ino ? at.size : 0;
  const drain = () => {
    for (;;) {
      if (cur) pos = readRest(cur.fd, pos, out);
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
