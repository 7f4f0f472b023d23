// The library's side of images: spawn({ image }), pull(), importImage(), images(), removeImage().
import type { Readable } from 'node:stream';
import { NsboxError } from '../errors.js';
import type { StartPart } from '../plan/part.js';
import { randomId, type ContainerSpec } from '../spec.js';
import type { ImportOptions } from './import.js';
import type { PullOptions } from './pull.js';
import { imageRun, overlayPart } from './run.js';
import { rootUsernsMaps } from '../userns/identity.js';
import { Store, type ImageRecord } from './store.js';

export type { ImageRecord } from './store.js';
export type { PullOptions, PullProgress } from './pull.js';

/** Pulls `ref` from its registry into the store (loaded on first use: node-tar and fetch are not needed before). */
export async function pull(ref: string, o: PullOptions = {}): Promise<ImageRecord> {
  return (await import('./pull.js')).pull(ref, o);
}

/** Imports a docker save / OCI archive or a root-filesystem tar (maybe gzipped) into the store. */
export async function importImage(
  stream: Readable,
  o: Pick<ImportOptions, 'name' | 'platform' | 'warn'> = {},
): Promise<ImageRecord[]> {
  return (await import('./import.js')).importArchive(new Store(), stream, o);
}

/** The images in the store. */
export function images(): ImageRecord[] {
  return new Store().images();
}

/**
 * A spec rooted in a copy-on-write layer over `ref` (which must be in the store), with the image's
 * Entrypoint, Cmd (replaced by a non-empty `command`), Env, WorkingDir and User; the part mounts
 * the overlay and removes the layer when the container ends.
 */
export function imageSpec(
  spec: Omit<ContainerSpec, 'rootfs'>,
  ref: string,
  o: { entrypoint?: string; removeOnExit?: boolean; hint?: string; record?: ImageRecord } = {},
): { spec: ContainerSpec; part: StartPart } {
  const store = new Store();
  const img = o.record ?? store.find(ref);
  if (!img)
    throw new NsboxError(`image not found locally: ${ref}${o.hint ?? ` (await pull('${ref}') first)`}`, {
      step: 'image',
    });
  const run = imageRun(store, img, {
    args: spec.command ?? [],
    entrypoint: o.entrypoint,
    env: spec.env,
    cwd: spec.cwd,
    user: spec.user,
  });
  const id = spec.id ?? randomId();
  // Root's --userns: the layers are seen through an idmapped mount with the container's maps.
  const maps = spec.userns && process.geteuid?.() === 0 ? rootUsernsMaps(spec.userns) : null;
  const { rootfs, part } = overlayPart(store, img, id, run, o.removeOnExit ?? true, maps ?? undefined);
  return {
    spec: {
      ...spec,
      id,
      rootfs,
      command: run.command,
      env: run.env,
      cwd: run.cwd,
      ...(run.user ? { user: run.user, groupAdd: [...(spec.groupAdd ?? []), ...(run.groupAdd ?? [])] } : {}),
    },
    part,
  };
}

/**
 * For spawn(): null without `image`; else the spec with the image's root and config filled in (and
 * `image` taken out), and the part that mounts it. The caller aborts the part if it fails later.
 */
export function imageSandboxSpec<T extends { image?: unknown; rootfs?: string; command?: string[] }>(
  spec: T,
): { spec: Omit<T, 'image'> & ContainerSpec; part: StartPart } | null {
  if (spec === null || typeof spec !== 'object' || spec.image === undefined) return null;
  const { image, ...rest } = spec;
  if (typeof image !== 'string' || image === '') {
    throw new NsboxError('image must be a reference, e.g. busybox:1.36', { field: 'image' });
  }
  if (rest.rootfs !== undefined) throw new NsboxError('give rootfs or image, not both', { field: 'image' });
  const r = imageSpec({ ...(rest as unknown as Omit<ContainerSpec, 'rootfs'>), command: rest.command ?? [] }, image);
  return { spec: { ...rest, ...r.spec }, part: r.part };
}
