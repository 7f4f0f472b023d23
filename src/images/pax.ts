// Extended attributes of a layer's entries (pax `SCHILY.xattr.NAME` records). node-tar reads pax
// headers as UTF-8 text and keeps only the keys it knows, so the values (security.capability is
// binary) are taken here from the raw bytes: a small scanner walks the same tar stream, block by
// block, and queues each entry's xattrs with its header checksum, which the entry must match.

import { Header } from 'tar';

const BLOCK = 512;
/** As node-tar: a pax header larger than this is ignored. */
const MAX_PAX = 1 << 20;
const PREFIX = 'SCHILY.xattr.';

export interface EntryXattrs {
  /** The entry header's checksum field, to check that node-tar's entry is this one. */
  cksum: number;
  xattrs: [string, Buffer][];
}

const octal = (b: Buffer, off: number, len: number): number => {
  const s = b.toString('latin1', off, off + len).replace(/[\0 ].*$|^ +/g, '');
  return s ? parseInt(s, 8) : 0;
};

/** A header's size field: octal, or base-256 when its first byte has the high bit set. */
function sizeOf(h: Buffer): number {
  if (h[124] & 0x80) {
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i];
    return n;
  }
  return octal(h, 124, 12);
}

/** `LEN key=value\n` records, binary-safe; the xattrs and a size override. */
function parsePax(body: Buffer): { xattrs: [string, Buffer][]; size?: number } {
  const xattrs: [string, Buffer][] = [];
  let size: number | undefined;
  for (let off = 0; off < body.length; ) {
    const sp = body.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(body.toString('latin1', off, sp), 10);
    if (!(len > sp - off) || off + len > body.length) break;
    const rec = body.subarray(sp + 1, off + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq > 0) {
      const key = rec.toString('utf8', 0, eq);
      const value = rec.subarray(eq + 1);
      if (key.startsWith(PREFIX) && key.length > PREFIX.length) xattrs.push([key.slice(PREFIX.length), value]);
      else if (key === 'size' && /^\d+$/.test(value.toString('latin1'))) size = Number(value.toString('latin1'));
    }
    off += len;
  }
  return { xattrs, size };
}

export class PaxScanner {
  /** One item per entry node-tar will emit (meta headers excluded), in order. */
  readonly queue: EntryXattrs[] = [];
  /** Whether any entry had xattrs (nothing to match otherwise). */
  any = false;
  private head = Buffer.alloc(0);
  private skip = 0;
  private paxBody: Buffer[] | null = null;
  private paxLeft = 0;
  private next: { xattrs: [string, Buffer][]; size?: number } | null = null;

  feed(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        if (this.paxBody && this.paxLeft > 0) {
          const take = Math.min(n, this.paxLeft);
          this.paxBody.push(chunk.subarray(off, off + take));
          this.paxLeft -= take;
        }
        this.skip -= n;
        off += n;
        if (this.skip === 0 && this.paxBody) {
          const body = Buffer.concat(this.paxBody);
          this.paxBody = null;
          if (body.length <= MAX_PAX) this.next = parsePax(body);
        }
        continue;
      }
      const need = BLOCK - this.head.length;
      const part = chunk.subarray(off, off + need);
      off += part.length;
      this.head = this.head.length ? Buffer.concat([this.head, part]) : Buffer.from(part);
      if (this.head.length < BLOCK) break;
      const h = this.head;
      this.head = Buffer.alloc(0);
      this.header(h);
    }
  }

  private header(h: Buffer): void {
    if (h.every((b) => b === 0)) return; // end-of-archive blocks
    const type = String.fromCharCode(h[156]);
    let size = sizeOf(h);
    const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;
    if (type === 'x' || type === 'X') {
      this.paxBody = [];
      this.paxLeft = size;
      this.skip = padded(size);
      if (size === 0) this.next = { xattrs: [] };
      return;
    }
    if (type === 'g' || type === 'L' || type === 'K' || type === 'N') {
      this.skip = padded(size); // global headers and GNU long names carry no xattrs of an entry
      return;
    }
    const ex = this.next;
    this.next = null;
    if (ex?.size !== undefined) size = ex.size;
    const xattrs = ex?.xattrs ?? [];
    if (xattrs.length) this.any = true;
    this.queue.push({ cksum: octal(h, 148, 8), xattrs });
    this.skip = padded(size);
  }
}

/** `LEN key=value\n`, LEN counting the whole record, its own digits too. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/**
 * A pax extended header (its block, records and padding) for an entry: its path, link target and
 * xattrs as SCHILY.xattr.NAME records, the values binary-safe (node-tar's Pax writes text only).
 */
export function paxXattrHeader(path: string, linkpath: string | undefined, xattrs: [string, Buffer][]): Buffer {
  const recs = [record('path', Buffer.from(path))];
  if (linkpath !== undefined) recs.push(record('linkpath', Buffer.from(linkpath)));
  for (const [k, v] of xattrs) recs.push(record(`${PREFIX}${k}`, v));
  const data = Buffer.concat(recs);
  const block = Buffer.alloc(BLOCK);
  const name = `PaxHeader/${path.replace(/\/$/, '').split('/').pop()}`.slice(0, 99);
  new Header({ path: name, type: 'ExtendedHeader', size: data.length, mode: 0o644 } as never).encode(block, 0);
  return Buffer.concat([block, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}
