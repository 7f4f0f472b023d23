// Hand-made tar archives for the tests, hostile ones included (node-tar's Header encodes each entry).
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

export interface TarEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';
  data?: string | Buffer;
  /** Size in the header when it must differ from the data (a bomb declares more). */
  size?: number;
  linkpath?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  devmaj?: number;
  devmin?: number;
  mtime?: Date;
  /** Extended attributes, as a pax header's SCHILY.xattr.NAME records (values binary). */
  xattrs?: Record<string, string | Buffer>;
}

/** A pax header block and its records: each `LEN key=value\n`, LEN counting the whole record. */
function paxHeader(path: string, xattrs: Record<string, string | Buffer>): Buffer[] {
  const recs = Object.entries(xattrs).map(([k, v]) => {
    const body = Buffer.concat([Buffer.from(` SCHILY.xattr.${k}=`), Buffer.from(v), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return Buffer.concat([Buffer.from(String(len)), body]);
  });
  const data = Buffer.concat(recs);
  const h = new Header({ path: `PaxHeader/${path}`.slice(0, 99), type: 'ExtendedHeader', size: data.length });
  const block = Buffer.alloc(512);
  h.encode(block, 0);
  return [block, data, Buffer.alloc((512 - (data.length % 512)) % 512)];
}

export function tarball(entries: TarEntry[], gzip = false): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    const type = e.type ?? 'File';
    if (e.xattrs) out.push(...paxHeader(e.path, e.xattrs));
    const h = new Header({
      path: e.path,
      type,
      size: e.size ?? (type === 'File' ? data.length : 0),
      linkpath: e.linkpath,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date(1_600_000_000_000),
      devmaj: e.devmaj ?? 0,
      devmin: e.devmin ?? 0,
    });
    const block = Buffer.alloc(512);
    h.encode(block, 0);
    out.push(block);
    if (data.length) out.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  out.push(Buffer.alloc(1024));
  const tar = Buffer.concat(out);
  return gzip ? gzipSync(tar) : tar;
}
