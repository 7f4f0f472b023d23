// From a config and its layers to an image in the store, shared by import and pull: each layer is
// unpacked once (by chain id), its diff_id checked against the config, then the names are moved.
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { NsboxError } from '../errors.js';
import { applyLayer, type ApplyOptions } from './layer.js';
import { chainIds, sha256, type ImageRecord, type Store } from './store.js';

/** The parts of an OCI / Docker image config nsbox reads. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  config?: {
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    User?: string;
    StopSignal?: string;
    Labels?: Record<string, string>;
  };
  rootfs?: { type?: string; diff_ids?: string[] };
}

export function parseConfig(bytes: Buffer, what: string): ImageConfig {
  let c: ImageConfig;
  try {
    c = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new NsboxError(`${what}: the image config is not JSON`, { step: 'config' });
  }
  const ids = c?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d))) {
    throw new NsboxError(`${what}: the image config has no valid rootfs.diff_ids`, { step: 'config' });
  }
  return c;
}

/** A pass-through that hashes what goes by; `check(digest)` after the end. */
export function digesting(what: string): Transform & { digest(): string } {
  const h = createHash('sha256');
  const t = new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  }) as Transform & { digest(): string };
  let d: string | undefined;
  t.digest = () => (d ??= `sha256:${h.digest('hex')}`);
  void what;
  return t;
}

export interface LayerSource {
  /** The blob's digest when it is known (compressed bytes), checked while it is read. */
  digest?: string;
  open(): Promise<Readable> | Readable;
}

export interface CommitOptions extends ApplyOptions {
  names?: string[];
  digests?: string[];
  /** Layers unpacked at the same time (default 3). */
  concurrency?: number;
  /** Called as each layer is being made or found. */
  onLayer?: (index: number, state: 'exists' | 'unpacking' | 'done') => void;
}

/** Unpacks what is missing and records the image; the config bytes give its id. */
export async function commitImage(
  store: Store,
  configBytes: Buffer,
  layers: LayerSource[],
  what: string,
  o: CommitOptions = {},
): Promise<ImageRecord> {
  const config = parseConfig(configBytes, what);
  const diffIds = config.rootfs!.diff_ids!;
  if (diffIds.length !== layers.length) {
    throw new NsboxError(`${what}: the manifest lists ${layers.length} layers but the config ${diffIds.length}`, {
      step: 'config',
    });
  }
  const chains = chainIds(diffIds);
  store.init();
  // Each layer unpacks into a directory of its own (overlay's format), so they can go side by side.
  const one = async (i: number): Promise<void> => {
    if (store.hasLayer(chains[i])) return o.onLayer?.(i, 'exists');
    o.onLayer?.(i, 'unpacking');
    await store.ensureLayer(chains[i], async (dir) => {
      const src = await layers[i].open();
      const dig = digesting(layers[i].digest ?? `layer ${i}`);
      src.on('error', (e) => dig.destroy(e));
      const r = await applyLayer(src.pipe(dig), dir, { ...o, name: layers[i].digest ?? diffIds[i] });
      if (layers[i].digest && dig.digest() !== layers[i].digest) {
        throw new NsboxError(`${what}: layer ${layers[i].digest} does not match its digest (got ${dig.digest()})`, {
          step: 'verify',
        });
      }
      if (r.diffId !== diffIds[i]) {
        throw new NsboxError(
          `${what}: layer ${layers[i].digest ?? i} unpacks to ${r.diffId}, not the config's diff_id ${diffIds[i]}`,
          { step: 'verify' },
        );
      }
      return r;
    });
    o.onLayer?.(i, 'done');
  };
  let next = 0,
    failed: unknown = null;
  const worker = async (): Promise<void> => {
    while (next < layers.length && !failed) {
      const i = next++;
      try {
        await one(i);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 3, layers.length)) }, worker));
  if (failed) throw failed;
  const size = chains.reduce((n, c) => n + store.layerSize(c), 0);
  const id = sha256(configBytes);
  store.putBlob(id, configBytes, 'config');
  return store.addImage({ id, layers: chains, diffIds, size, created: config.created }, o.names ?? [], o.digests ?? []);
}
