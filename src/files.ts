// Reading a file nsbox was pointed at (a seccomp profile, ...): it may be anything — a FIFO
// that never answers, /dev/zero, a huge file. Open without blocking, take regular files only,
// and read at most a bound.
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';

/** The most nsbox reads of one such file. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** The file's text; throws an Error whose message says what is wrong, in one line. */
export function readBounded(path: string, max = MAX_FILE_BYTES): string {
  // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever (Node adds O_CLOEXEC).
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new Error(`not a regular file${st.isFIFO() ? ' (a FIFO)' : st.isDirectory() ? ' (a directory)' : ''}`);
    }
    if (st.size > max) throw new Error(`too large (${st.size} bytes; at most ${max})`);
    // The size may change under us: read until EOF, but never past the bound.
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (let r; n <= max && (r = readSync(fd, buf, n, max + 1 - n, null)) > 0; ) n += r;
    if (n > max) throw new Error(`too large (more than ${max} bytes)`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Write all of `data` to fd (writeSync may take only a part of it). */
export function writeAll(fd: number, data: string | Buffer): void {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  for (let off = 0; off < b.length; ) off += writeSync(fd, b, off);
}
