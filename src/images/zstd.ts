// zstd layers (application/vnd.oci.image.layer.v1.tar+zstd), inflated by fzstd (pure JavaScript,
// streaming). fzstd allocates each frame's window as its header declares (up to 2 GiB), so a guard
// walks the compressed stream first, frame by frame and block by block (their headers give their
// sizes), and refuses a window above MAX_WINDOW or a dictionary before fzstd sees the frame. The
// content checksum is not checked: the layer's diff_id (sha256 of the tar) is, as for gzip.
import { Transform } from 'node:stream';
import { NsboxError } from '../errors.js';

/** The largest window accepted: zstd's own default limit for decoding is 128 MiB (--long=27). */
export const MAX_WINDOW = 128 << 20;
const MAGIC = 0xfd2fb528;

type State =
  | { at: 'frame' } // a frame's magic next
  | { at: 'header'; need: number } // the rest of a frame header (need bytes in all, from its magic)
  | { at: 'block'; checksum: boolean } // a block header next
  | { at: 'skip'; left: number; next: 'frame' | { checksum: boolean } };

export class ZstdGuard {
  private st: State = { at: 'frame' };
  private buf: Buffer = Buffer.alloc(0);

  constructor(private name: string) {}

  private fail(why: string): never {
    throw new NsboxError(`layer ${this.name}: ${why}`, { step: 'layer' });
  }

  /** Checks the next compressed bytes; throws on a frame nsbox will not inflate. */
  feed(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    for (;;) {
      const b = this.buf;
      const st = this.st;
      if (st.at === 'skip') {
        const n = Math.min(st.left, b.length - off);
        off += n;
        st.left -= n;
        if (st.left > 0) break;
        this.st = st.next === 'frame' ? { at: 'frame' } : { at: 'block', checksum: st.next.checksum };
        continue;
      }
      if (st.at === 'frame') {
        if (b.length - off < 8) break;
        const magic = b.readUInt32LE(off);
        if ((magic & 0xfffffff0) === 0x184d2a50) {
          // A skippable frame (zstd:chunked's metadata): its size follows.
          this.st = { at: 'skip', left: 8 + b.readUInt32LE(off + 4), next: 'frame' };
          continue;
        }
        if (magic !== MAGIC) this.fail('bad zstd data (not a zstd frame)');
        const fhd = b[off + 4];
        const single = (fhd >> 5) & 1,
          fcs = fhd >> 6,
          dict = fhd & 3;
        if (fhd & 8) this.fail('bad zstd data (reserved bit set)');
        if (dict) this.fail('zstd frames with a dictionary are not supported');
        const fcsBytes = fcs ? 1 << fcs : single;
        this.st = { at: 'header', need: 5 + (single ? 0 : 1) + fcsBytes };
        continue;
      }
      if (st.at === 'header') {
        if (b.length - off < st.need) break;
        const fhd = b[off + 4];
        const single = (fhd >> 5) & 1,
          fcs = fhd >> 6;
        let window: number;
        if (!single) {
          const wd = b[off + 5];
          const base = 2 ** (10 + (wd >> 3));
          window = base + (base / 8) * (wd & 7);
        } else {
          const p = off + 5;
          window =
            fcs === 0
              ? b[p]
              : fcs === 1
                ? b.readUInt16LE(p) + 256
                : fcs === 2
                  ? b.readUInt32LE(p)
                  : Number(b.readBigUInt64LE(p));
        }
        if (window > MAX_WINDOW)
          this.fail(`a zstd frame wants a ${Math.ceil(window / 2 ** 20)} MiB window (at most ${MAX_WINDOW >> 20} MiB)`);
        off += st.need;
        this.st = { at: 'block', checksum: !!((fhd >> 2) & 1) };
        continue;
      }
      // A block header: 1 bit last, 2 bits type, 21 bits size.
      if (b.length - off < 3) break;
      const h = b[off] | (b[off + 1] << 8) | (b[off + 2] << 16);
      const last = h & 1,
        type = (h >> 1) & 3,
        size = h >>> 3;
      if (type === 3) this.fail('bad zstd data (reserved block type)');
      off += 3;
      const body = type === 1 ? 1 : size;
      this.st = {
        at: 'skip',
        left: body + (last && st.checksum ? 4 : 0),
        next: last ? 'frame' : { checksum: st.checksum },
      };
    }
    this.buf = this.buf.subarray(off);
  }

  /** At the end of the stream: a frame left unfinished is an error. */
  end(): void {
    if (this.st.at !== 'frame' || this.buf.length) this.fail('bad zstd data (truncated)');
  }
}

/** A Transform that inflates zstd (fzstd), each chunk checked by the guard before. */
export async function zstdInflater(name: string): Promise<Transform> {
  const { Decompress } = await import('fzstd');
  const guard = new ZstdGuard(name);
  let out: Transform;
  const z = new Decompress((data: Uint8Array) => {
    if (data.length) out.push(Buffer.from(data.buffer, data.byteOffset, data.length));
  });
  const bad = (e: unknown) =>
    e instanceof NsboxError
      ? e
      : new NsboxError(`layer ${name}: bad zstd data: ${(e as Error).message}`, { step: 'layer' });
  out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        guard.feed(chunk);
        z.push(chunk, false);
        cb();
      } catch (e) {
        cb(bad(e));
      }
    },
    flush(cb) {
      try {
        guard.end();
        z.push(new Uint8Array(0), true);
        cb();
      } catch (e) {
        cb(bad(e));
      }
    },
  });
  return out;
}
