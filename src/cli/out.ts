// Output to stdout without making process.stdout: that stream (and the modules behind it) is about
// 2 ms of a short command's start, as much as `ps` itself takes.
import { writeSync } from 'node:fs';

/** Writes text to fd 1 whole; a non-blocking stdout (EAGAIN) gets the rest through process.stdout,
 *  a closed pipe (EPIPE: `nsbox ps | head -1`) none. */
export function writeOut(text: string): void {
  const b = Buffer.from(text);
  let off = 0;
  try {
    while (off < b.length) off += writeSync(1, b, off);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') return;
    if (code !== 'EAGAIN') throw e;
    process.stdout.write(b.subarray(off));
  }
}
