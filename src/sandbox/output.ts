// Collecting a sandbox's output up to caps: per stream (maxOutputBytes) and for both together
// (maxTotalOutputBytes); past a cap the bytes are read and dropped, so the command never blocks.
import type { Readable } from 'node:stream';

export interface Collected {
  chunks: Buffer[];
  size: number;
  truncated: boolean;
}

/** A shared budget for several streams. */
export interface Budget {
  left: number;
}

export function collect(stream: Readable, max: number, total: Budget): { c: Collected; done: Promise<void> } {
  const c: Collected = { chunks: [], size: 0, truncated: false };
  stream.on('data', (d: Buffer) => {
    const room = Math.min(max - c.size, total.left);
    if (room <= 0) {
      c.truncated = true;
      return;
    }
    if (d.length > room) c.truncated = true;
    const keep = d.length > room ? d.subarray(0, room) : d;
    c.chunks.push(keep);
    c.size += keep.length;
    total.left -= keep.length;
  });
  return { c, done: new Promise<void>((res) => stream.once('close', res)) };
}
