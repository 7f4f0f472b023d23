// Pulling an image: the manifest (by Accept, an index resolved to this machine's platform), the
// config, then the missing layers (about 3 at a time), each streamed straight into its layer
// directory while its digest and diff_id are checked. A mismatch removes what was being made.
import { Transform } from 'node:stream';
import { NsboxError } from '../errors.js';
import { commitImage, type LayerSource } from './commit.js';
import { INDEX_TYPES } from './import.js';
import { choosePlatform, hostPlatform, type IndexEntry, type Platform } from './platform.js';
import { formatReference, parseReference, repoName, type Reference } from './reference.js';
import { Registry } from './registry.js';
import { sha256, Store, type ImageRecord } from './store.js';

export const MANIFEST_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  docker2: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;
const ACCEPT = Object.values(MANIFEST_TYPES);
const SCHEMA1 = [
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
];
const MANIFEST_MAX = 4 << 20,
  CONFIG_MAX = 16 << 20;

export interface PullProgress {
  /** Index of the layer in the manifest, its digest and declared size. */
  layer: number;
  digest: string;
  total: number;
  /** exists: already in the store; downloading (bytes so far); done. */
  state: 'waiting' | 'exists' | 'downloading' | 'done';
  bytes: number;
}

export interface PullOptions {
  platform?: Platform;
  /** false: plain HTTP to any registry. Default: HTTPS, plain HTTP only for loopback. */
  tlsVerify?: boolean;
  store?: Store;
  onProgress?: (p: PullProgress) => void;
  /** Layers downloaded at the same time (default 3). */
  concurrency?: number;
  /** What a layer could not keep (device nodes rootless, extended attributes): told, not fatal. */
  warn?: (message: string) => void;
}

interface Manifest {
  schemaVersion?: number;
  mediaType?: string;
  manifests?: IndexEntry[];
  config?: { digest: string; size?: number };
  layers?: { digest: string; size?: number; mediaType?: string }[];
}

function parseManifest(bytes: Buffer, what: string): Manifest {
  try {
    return JSON.parse(bytes.toString('utf8')) as Manifest;
  } catch {
    throw new NsboxError(`the manifest of ${what} is not JSON`, { step: 'pull' });
  }
}

async function fetchManifest(
  reg: Registry,
  r: Reference,
  ref: string,
  what: string,
): Promise<{ bytes: Buffer; digest: string; type: string; m: Manifest }> {
  const res = await reg.get(r.repository, `manifests/${ref}`, ACCEPT, what);
  const bytes = await Registry.bytes(res, MANIFEST_MAX, `the manifest of ${what}`);
  const digest = sha256(bytes);
  if (ref.startsWith('sha256:') && digest !== ref) {
    throw new NsboxError(`the manifest of ${what} does not match its digest ${ref} (got ${digest})`, {
      step: 'verify',
    });
  }
  const m = parseManifest(bytes, what);
  const type = (res.headers.get('content-type') ?? '').split(';')[0].trim() || m.mediaType || '';
  if (SCHEMA1.includes(type) || m.schemaVersion === 1) {
    throw new NsboxError(
      `${what} has a Docker schema 1 manifest, which nsbox does not read (it is deprecated: re-push the image)`,
      { step: 'pull' },
    );
  }
  return { bytes, digest, type: m.mediaType ?? type, m };
}

/** Pulls `ref` into the store; resolves with the image record. */
export async function pull(ref: string, o: PullOptions = {}): Promise<ImageRecord> {
  const r = parseReference(ref);
  const what = formatReference(r);
  const store = (o.store ?? new Store()).init();
  const reg = new Registry(r.registry, { tlsVerify: o.tlsVerify });
  const top = await fetchManifest(reg, r, r.digest ?? r.tag ?? 'latest', what);
  let man = top;
  if (INDEX_TYPES.includes(top.type) || top.m.manifests) {
    const chosen = choosePlatform(top.m.manifests ?? [], o.platform ?? hostPlatform(), what);
    man = await fetchManifest(reg, r, chosen.digest, what);
    if (INDEX_TYPES.includes(man.type) || man.m.manifests)
      throw new NsboxError(`${what}: an index inside an index is not supported`, { step: 'pull' });
  }
  const m = man.m;
  if (!m.config?.digest || !Array.isArray(m.layers))
    throw new NsboxError(`the manifest of ${what} is malformed (no config or layers)`, { step: 'pull' });
  for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
    if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new NsboxError(`${what}: unsupported digest ${d}`, { step: 'pull' });
  }
  const config = await Registry.bytes(
    await reg.get(r.repository, `blobs/${m.config.digest}`, ['*/*'], `config of ${what}`),
    CONFIG_MAX,
    `the config of ${what}`,
  );
  if (sha256(config) !== m.config.digest) {
    throw new NsboxError(`the config of ${what} does not match its digest ${m.config.digest} (got ${sha256(config)})`, {
      step: 'verify',
    });
  }
  const progress = (i: number, state: PullProgress['state'], bytes = 0) =>
    o.onProgress?.({ layer: i, digest: m.layers![i].digest, total: m.layers![i].size ?? 0, state, bytes });
  m.layers.forEach((_, i) => progress(i, 'waiting'));
  const layers: LayerSource[] = m.layers.map((l, i) => ({
    digest: l.digest,
    open: async () => {
      const res = await reg.get(r.repository, `blobs/${l.digest}`, ['*/*'], `layer ${l.digest} of ${what}`);
      let bytes = 0;
      progress(i, 'downloading', 0);
      const count = new Transform({
        transform(chunk: Buffer, _e, cb) {
          bytes += chunk.length;
          if (l.size !== undefined && bytes > l.size)
            return cb(
              new NsboxError(`layer ${l.digest} of ${what} is longer than its manifest says`, { step: 'verify' }),
            );
          progress(i, 'downloading', bytes);
          cb(null, chunk);
        },
      });
      const body = Registry.stream(res);
      body.on('error', (e) =>
        count.destroy(new NsboxError(`downloading layer ${l.digest}: ${e.message}`, { step: 'pull' })),
      );
      return body.pipe(count);
    },
  }));
  store.putBlob(top.digest, top.bytes, 'manifest');
  if (man !== top) store.putBlob(man.digest, man.bytes, 'manifest');
  return commitImage(store, config, layers, what, {
    names: r.tag ? [formatReference({ ...r, digest: undefined })] : [],
    digests: [`${repoName(r)}@${top.digest}`],
    concurrency: o.concurrency,
    warn: o.warn,
    onLayer: (i, state) => {
      if (state === 'exists') progress(i, 'exists');
      else if (state === 'done') progress(i, 'done', m.layers![i].size ?? 0);
    },
  });
}
