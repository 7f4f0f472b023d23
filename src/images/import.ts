// `nsbox import`: a `docker save` archive (old <id>/layer.tar form or the OCI-layout form), an
// oci-archive, or a plain root-filesystem tar (maybe gzipped). The archive is unpacked like a
// layer (so it is contained like one) into tmp/, then read through fds resolved inside it.
import {
  closeSync,
  constants as C,
  createReadStream,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
} from 'node:fs';
import type { Readable } from 'node:stream';
import { NsboxError } from '../errors.js';
import { fsops } from '../native.js';
import { commitImage, type LayerSource } from './commit.js';
import { applyLayer } from './layer.js';
import { choosePlatform, hostPlatform, type IndexEntry, type Platform } from './platform.js';
import { formatReference, parseReference } from './reference.js';
import { sha256, type ImageRecord, type Store } from './store.js';

const O_PATH = 0o10000000;
const JSON_MAX = 16 << 20;
export const INDEX_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];

/** An image as imported, with the names this archive gave it. */
export type Imported = ImageRecord & { loaded: string[] };

export interface ImportOptions {
  /** The name to give the image (the first one, for an archive of several). */
  name?: string;
  platform?: Platform;
  warn?: (message: string) => void;
  /** Called once per image name or id as it lands. */
  onImage?: (img: ImageRecord) => void;
}

/** Files of the unpacked archive, opened inside it (a symlink in the archive cannot reach out). */
class ArchiveDir {
  readonly fd: number;
  constructor(readonly dir: string) {
    this.fd = openSync(dir, C.O_DIRECTORY | C.O_NOFOLLOW | O_PATH);
  }
  open(path: string): number | null {
    try {
      const fd = fsops.openIn(this.fd, path, C.O_RDONLY); // symlinks are followed, inside the archive
      if (!fstatSync(fd).isFile()) {
        closeSync(fd);
        throw new NsboxError(`archive member ${path} is not a regular file`, { step: 'import' });
      }
      return fd;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }
  has(path: string): boolean {
    const fd = this.open(path);
    if (fd === null) return false;
    closeSync(fd);
    return true;
  }
  read(path: string): Buffer {
    const fd = this.open(path);
    if (fd === null) throw new NsboxError(`archive member ${path} is missing`, { step: 'import' });
    try {
      const size = fstatSync(fd).size;
      if (size > JSON_MAX)
        throw new NsboxError(`archive member ${path} is too large (${size} bytes)`, { step: 'import' });
      const b = Buffer.alloc(size);
      for (let off = 0; off < size; ) {
        const n = readSync(fd, b, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      return b;
    } finally {
      closeSync(fd);
    }
  }
  json<T>(path: string): T {
    try {
      return JSON.parse(this.read(path).toString('utf8')) as T;
    } catch (e) {
      if (e instanceof NsboxError) throw e;
      throw new NsboxError(`archive member ${path} is not valid JSON`, { step: 'import' });
    }
  }
  stream(path: string): Readable {
    const fd = this.open(path);
    if (fd === null) throw new NsboxError(`archive member ${path} is missing`, { step: 'import' });
    return createReadStream('', { fd });
  }
  close(): void {
    closeSync(this.fd);
  }
}

const normalName = (n: string): string => formatReference(parseReference(n));

/** Reads an archive stream into the store; resolves with the images it held. */
export async function importArchive(store: Store, input: Readable, o: ImportOptions = {}): Promise<Imported[]> {
  const name = o.name === undefined ? undefined : normalName(o.name); // a bad name fails before any work
  const tmp = store.tempDir();
  try {
    const outer = `${tmp}/archive`;
    mkdirSync(outer, { mode: 0o755 });
    const unpacked = await applyLayer(input, outer, { name: 'archive', warn: o.warn });
    const a = new ArchiveDir(outer);
    try {
      if (a.has('manifest.json')) return await dockerSave(store, a, name, o);
      if (a.has('index.json') && a.has('oci-layout')) return await ociLayout(store, a, name, o);
    } finally {
      a.close();
    }
    return [await rootfsImage(store, outer, unpacked.diffId, unpacked.size, name, o)];
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface SaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function dockerSave(
  store: Store,
  a: ArchiveDir,
  name: string | undefined,
  o: ImportOptions,
): Promise<Imported[]> {
  const list = a.json<SaveEntry[]>('manifest.json');
  if (!Array.isArray(list) || list.length === 0)
    throw new NsboxError('manifest.json of the archive lists no image', { step: 'import' });
  const out: Imported[] = [];
  for (const [i, m] of list.entries()) {
    if (typeof m?.Config !== 'string' || !Array.isArray(m.Layers))
      throw new NsboxError('manifest.json of the archive is malformed', { step: 'import' });
    const names = i === 0 && name ? [name] : (m.RepoTags ?? []).map(normalName);
    const layers: LayerSource[] = m.Layers.map((p) => {
      const hex = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(p)?.[1];
      return { digest: hex ? `sha256:${hex}` : undefined, open: () => a.stream(p) };
    });
    const config = a.read(m.Config);
    const cfgHex = /^(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(m.Config)?.[1];
    if (cfgHex && sha256(config) !== `sha256:${cfgHex}`)
      throw new NsboxError(`config ${m.Config} does not match its digest`, { step: 'verify' });
    const img = await commitImage(store, config, layers, `image ${names[0] ?? m.Config}`, { names, warn: o.warn });
    o.onImage?.(img);
    out.push({ ...img, loaded: names });
  }
  return out;
}

interface Manifest {
  mediaType?: string;
  config?: { digest: string };
  layers?: { digest: string; mediaType?: string }[];
  manifests?: IndexEntry[];
}

async function ociLayout(store: Store, a: ArchiveDir, name: string | undefined, o: ImportOptions): Promise<Imported[]> {
  const blob = (digest: string): Buffer => {
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new NsboxError(`unsupported digest ${digest}`, { step: 'import' });
    const b = a.read(`blobs/sha256/${digest.slice(7)}`);
    if (sha256(b) !== digest) throw new NsboxError(`blob ${digest} does not match its digest`, { step: 'verify' });
    return b;
  };
  const parse = (b: Buffer, what: string): Manifest => {
    try {
      return JSON.parse(b.toString('utf8')) as Manifest;
    } catch {
      throw new NsboxError(`${what} is not valid JSON`, { step: 'import' });
    }
  };
  const index = a.json<Manifest>('index.json');
  const entries = index.manifests ?? [];
  if (entries.length === 0) throw new NsboxError('index.json of the archive lists no image', { step: 'import' });
  const out: Imported[] = [];
  for (const [i, e] of entries.entries()) {
    const ann = e.annotations ?? {};
    const refName = ann['io.containerd.image.name'] ?? ann['org.opencontainers.image.ref.name'];
    const names = i === 0 && name ? [name] : refName && /[:/]/.test(refName) ? [normalName(refName)] : [];
    let m = parse(blob(e.digest), `manifest ${e.digest}`);
    let manifestDigest = e.digest;
    if (INDEX_TYPES.includes(m.mediaType ?? e.mediaType ?? '') || m.manifests) {
      const chosen = choosePlatform(m.manifests ?? [], o.platform ?? hostPlatform(), `image ${names[0] ?? e.digest}`);
      manifestDigest = chosen.digest;
      m = parse(blob(chosen.digest), `manifest ${chosen.digest}`);
    }
    if (!m.config?.digest || !Array.isArray(m.layers))
      throw new NsboxError(`manifest ${manifestDigest} is malformed`, { step: 'import' });
    const layers: LayerSource[] = m.layers.map((l) => {
      if (!/^sha256:[0-9a-f]{64}$/.test(l.digest))
        throw new NsboxError(`unsupported layer digest ${l.digest}`, { step: 'import' });
      return { digest: l.digest, open: () => a.stream(`blobs/sha256/${l.digest.slice(7)}`) };
    });
    const digests = names.map((n) => `${n.replace(/:[^:/]+$/, '')}@${manifestDigest}`);
    const img = await commitImage(store, blob(m.config.digest), layers, `image ${names[0] ?? manifestDigest}`, {
      names,
      digests,
      warn: o.warn,
    });
    o.onImage?.(img);
    out.push({ ...img, loaded: names });
  }
  return out;
}

const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

/** A plain root filesystem: the unpacked archive is the image's one layer, moved into place. */
async function rootfsImage(
  store: Store,
  dir: string,
  diffId: string,
  size: number,
  name: string | undefined,
  o: ImportOptions,
): Promise<Imported> {
  const p = o.platform ?? hostPlatform();
  const created = new Date().toISOString();
  const config = Buffer.from(
    JSON.stringify({
      architecture: p.architecture,
      os: p.os,
      ...(p.variant ? { variant: p.variant } : {}),
      created,
      config: { Env: DEFAULT_ENV },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    }),
  );
  await store.ensureLayer(diffId, async (into) => {
    rmdirSync(into);
    renameSync(dir, into);
    return { diffId, size };
  });
  const id = sha256(config);
  store.putBlob(id, config, 'config');
  const img = store.addImage({ id, layers: [diffId], diffIds: [diffId], size, created }, name ? [name] : []);
  o.onImage?.(img);
  return { ...img, loaded: name ? [name] : [] };
}
