// The image store. Content-addressed and written so that a process killed at any moment leaves it
// usable: everything is made in tmp/ and renamed into place; names change under one lock.
//   ROOT/lock                      flock: taken while images.json is read-modified-written
//   ROOT/images.json               every image (id = config digest) with its names
//   ROOT/blobs/sha256/HEX          manifests and configs, named by the digest of their bytes
//   ROOT/layers/HEX/diff           a layer unpacked once, named by its chain id; HEX.lock while unpacking
//   ROOT/l/SHORT -> ../layers/HEX/diff   short names, so long chains fit in overlay's mount options
//   ROOT/containers/ID/{upper,work,merged,image}   a container's copy-on-write layer
//   ROOT/tmp/PID-RANDOM            work in progress; left over by a dead process, it is removed
import { createRequire } from 'node:module';
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { NsboxError } from '../errors.js';
import { flock } from '../native.js';
import { removeContainerDir, storageRoot } from './rwlayer.js';
import { isSha256, parseReference, formatReference, repoName, type Reference } from './reference.js';

export interface ImageRecord {
  /** sha256:HEX of the image's config. */
  id: string;
  /** Full references, e.g. docker.io/library/bash:4.4. */
  names: string[];
  /** repository@manifest-digest, for images pulled from a registry. */
  digests: string[];
  /** Chain ids, bottom layer first. */
  layers: string[];
  diffIds: string[];
  /** Unpacked bytes of all layers. */
  size: number;
  /** From the config, and when it came into this store. */
  created?: string;
  added: string;
}

interface Index {
  images: Record<string, ImageRecord>;
}

export { storageRoot };

// node:crypto is loaded when first needed: `nsbox run IMAGE` reads the store without it.
let cryptoMod: typeof import('node:crypto') | undefined;
const crypto = (): typeof import('node:crypto') => (cryptoMod ??= createRequire(import.meta.url)('node:crypto'));

export const hexOf = (digest: string): string => {
  if (!isSha256(digest)) throw new NsboxError(`not a sha256 digest: ${digest}`);
  return digest.slice(7);
};
export const sha256 = (data: Buffer | string): string =>
  `sha256:${crypto().createHash('sha256').update(data).digest('hex')}`;

/** The chain id of a layer: its diff_id on top of its parent's chain id (OCI image spec). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const SHORT = 12;
const LOCK_EX = 2,
  LOCK_NB = 4,
  LOCK_UN = 8;

/** An exclusive flock on `path` (made if missing), as src/state locks; null when held and !wait. */
class Lock {
  private constructor(private fd: number) {}
  static take(path: string, wait = true): Lock | null {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) return new Lock(fd);
    closeSync(fd);
    return null;
  }
  unlock(): void {
    if (this.fd < 0) return;
    flock(this.fd, LOCK_UN); // explicitly: a child cloned meanwhile would keep it locked
    closeSync(this.fd);
    this.fd = -1;
  }
}

function withLock<T>(path: string, fn: () => T): T {
  const l = Lock.take(path)!;
  try {
    return fn();
  } finally {
    l.unlock();
  }
}

/** Readers see the old content or the new, never a part. */
function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export class Store {
  constructor(readonly root = storageRoot()) {}

  private ready = false;
  /** Makes the directories, and removes work a dead process left in tmp/. */
  init(): this {
    if (this.ready) return this;
    for (const d of ['blobs/sha256', 'layers', 'l', 'tmp', 'containers'])
      mkdirSync(`${this.root}/${d}`, { recursive: true, mode: 0o700 });
    for (const t of readdirSync(`${this.root}/tmp`)) {
      const pid = Number(t.split('-')[0]);
      if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid))
        rmSync(`${this.root}/tmp/${t}`, { recursive: true, force: true });
    }
    this.ready = true;
    return this;
  }

  /** A new empty directory in tmp/, removed with rmTemp or, if we die, by the next init. */
  tempDir(): string {
    const dir = `${this.init().root}/tmp/${process.pid}-${crypto().randomBytes(6).toString('hex')}`;
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  }

  // ---- blobs ----
  blobPath(digest: string): string {
    return `${this.root}/blobs/sha256/${hexOf(digest)}`;
  }
  hasBlob(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }
  /** Stores bytes under their digest, after checking it. */
  putBlob(digest: string, data: Buffer, what = 'blob'): void {
    const got = sha256(data);
    if (got !== digest)
      throw new NsboxError(`${what} ${digest} does not match its digest (got ${got})`, { step: 'verify' });
    if (this.hasBlob(digest)) return;
    const tmp = `${this.tempDir()}/blob`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, this.blobPath(digest));
    rmSync(tmp.slice(0, -5), { recursive: true, force: true });
  }
  readBlob(digest: string): Buffer {
    return readFileSync(this.blobPath(digest));
  }

  // ---- layers ----
  layerDir(chainId: string): string {
    return `${this.root}/layers/${hexOf(chainId)}`;
  }
  hasLayer(chainId: string): boolean {
    return existsSync(`${this.layerDir(chainId)}/layer.json`);
  }
  /** The short absolute path of a layer's files (ROOT/l/SHORT), for overlay's lowerdir. */
  layerLink(chainId: string): string {
    return `${this.root}/l/${hexOf(chainId).slice(0, SHORT)}`;
  }

  /**
   * Makes the layer with this chain id unless it exists: `unpack(dir)` fills an empty directory in
   * tmp/ which is then renamed into place. A per-layer lock makes concurrent pulls unpack it once.
   */
  async ensureLayer(
    chainId: string,
    unpack: (dir: string) => Promise<{ diffId: string; size: number }>,
  ): Promise<void> {
    this.init();
    if (this.hasLayer(chainId)) return;
    const hex = hexOf(chainId);
    let lock: Lock | null;
    while (!(lock = Lock.take(`${this.root}/layers/${hex}.lock`, false))) await new Promise((r) => setTimeout(r, 50));
    try {
      if (this.hasLayer(chainId)) return;
      const tmp = this.tempDir();
      try {
        mkdirSync(`${tmp}/diff`, { mode: 0o755 });
        const { diffId, size } = await unpack(`${tmp}/diff`);
        writeFileSync(`${tmp}/layer.json`, `${JSON.stringify({ chainId, diffId, size })}\n`);
        rmSync(this.layerDir(chainId), { recursive: true, force: true }); // a half-made one, from before
        renameSync(tmp, this.layerDir(chainId));
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      const link = this.layerLink(chainId);
      rmSync(link, { force: true });
      symlinkSync(`../layers/${hex}/diff`, link);
    } finally {
      lock.unlock();
      rmSync(`${this.root}/layers/${hex}.lock`, { force: true });
    }
  }
  layerSize(chainId: string): number {
    try {
      return JSON.parse(readFileSync(`${this.layerDir(chainId)}/layer.json`, 'utf8')).size ?? 0;
    } catch {
      return 0;
    }
  }

  // ---- images and names ----
  private readIndex(): Index {
    try {
      const ix = JSON.parse(readFileSync(`${this.root}/images.json`, 'utf8')) as Index;
      if (ix && typeof ix.images === 'object') return ix;
    } catch {
      /* none yet */
    }
    return { images: {} };
  }
  private update<T>(fn: (ix: Index) => T): T {
    this.init();
    return withLock(`${this.root}/lock`, () => {
      const ix = this.readIndex();
      const out = fn(ix);
      writeAtomic(`${this.root}/images.json`, `${JSON.stringify(ix, null, 1)}\n`);
      return out;
    });
  }

  images(): ImageRecord[] {
    return Object.values(this.readIndex().images);
  }

  /** Records an image (its layers and config already stored) and moves `names` onto it. */
  addImage(
    rec: Omit<ImageRecord, 'names' | 'digests' | 'added'>,
    names: string[],
    digests: string[] = [],
  ): ImageRecord {
    return this.update((ix) => {
      for (const other of Object.values(ix.images)) {
        if (other.id !== rec.id) other.names = other.names.filter((n) => !names.includes(n));
      }
      const old = ix.images[rec.id];
      const merged: ImageRecord = {
        ...rec,
        names: [...new Set([...(old?.names ?? []), ...names])],
        digests: [...new Set([...(old?.digests ?? []), ...digests])],
        added: old?.added ?? new Date().toISOString(),
      };
      ix.images[rec.id] = merged;
      return merged;
    });
  }

  /** An image by name (normalized like docker), id, id prefix (3+ hex digits) or name@digest. */
  find(ref: string): ImageRecord | null {
    const all = this.images();
    const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
    if (/^[0-9a-f]{3,64}$/.test(hex)) {
      const hits = all.filter((i) => i.id.slice(7).startsWith(hex));
      if (hits.length === 1) return hits[0];
      if (hits.length > 1) throw new NsboxError(`image id prefix ${ref} is ambiguous`);
      if (ref.startsWith('sha256:')) return null;
    }
    let r: Reference;
    try {
      r = parseReference(ref);
    } catch {
      return null;
    }
    return findRef(all, r);
  }

  /** Removes a name; the image goes when it has no name left (unless other names keep it). */
  untag(name: string): ImageRecord | null {
    return this.update((ix) => {
      for (const img of Object.values(ix.images)) {
        const i = img.names.indexOf(name);
        if (i >= 0) {
          img.names.splice(i, 1);
          return img;
        }
      }
      return null;
    });
  }

  removeImage(id: string): void {
    this.update((ix) => {
      delete ix.images[id];
    });
  }

  // ---- containers ----
  /** Containers made from images (containers/ID/image): their image id and layers. */
  containers(): { id: string; image: string; layers: string[] }[] {
    const out: { id: string; image: string; layers: string[] }[] = [];
    let ids: string[] = [];
    try {
      ids = readdirSync(`${this.root}/containers`);
    } catch {
      /* none */
    }
    for (const id of ids) {
      try {
        const c = JSON.parse(readFileSync(`${this.root}/containers/${id}/image`, 'utf8'));
        out.push({ id, image: String(c.image), layers: Array.isArray(c.layers) ? c.layers : [] });
      } catch {
        /* half-made */
      }
    }
    return out;
  }

  /** A container's copy-on-write directories (upper, work, and merged, the mount point). */
  containerDirs(containerId: string): { dir: string; upper: string; work: string; merged: string } {
    if (!/^[0-9a-f]{12}$/.test(containerId)) throw new NsboxError(`invalid container id: ${containerId}`);
    const dir = `${this.root}/containers/${containerId}`;
    return { dir, upper: `${dir}/upper`, work: `${dir}/work`, merged: `${dir}/merged` };
  }
  createContainer(
    containerId: string,
    img: ImageRecord,
    stopSignal?: string,
  ): { dir: string; upper: string; work: string; merged: string } {
    const d = this.containerDirs(containerId);
    try {
      mkdirSync(d.dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.init(); // a new store (run's hot path skips init's scan of tmp/ otherwise)
      mkdirSync(d.dir, { mode: 0o700 });
    }
    for (const s of [d.upper, d.work, d.merged]) mkdirSync(s, { mode: 0o755 });
    writeFileSync(`${d.dir}/image`, `${JSON.stringify({ image: img.id, layers: img.layers, stopSignal })}\n`);
    return d;
  }
  /** Best effort: rootless, files a container made as another of its ids are not ours to remove. */
  removeContainer(containerId: string): void {
    try {
      removeContainerDir(this.containerDirs(containerId).dir);
    } catch (e) {
      process.emitWarning(`nsbox: could not remove the container's layer: ${(e as Error).message}`);
    }
  }

  /** Removes layers no image uses, and what dead processes left. Returns the layers removed. */
  prune(): string[] {
    this.init();
    return withLock(`${this.root}/lock`, () => {
      const used = new Set([...this.images(), ...this.containers()].flatMap((i) => i.layers.map(hexOf)));
      const removed: string[] = [];
      for (const e of readdirSync(`${this.root}/layers`)) {
        if (e.endsWith('.lock') || used.has(e)) continue;
        const l = Lock.take(`${this.root}/layers/${e}.lock`, false);
        if (!l) continue; // being unpacked right now
        try {
          rmSync(`${this.root}/layers/${e}`, { recursive: true, force: true });
          rmSync(`${this.root}/l/${e.slice(0, SHORT)}`, { force: true });
          removed.push(`sha256:${e}`);
        } finally {
          l.unlock();
          rmSync(`${this.root}/layers/${e}.lock`, { force: true });
        }
      }
      for (const link of readdirSync(`${this.root}/l`)) {
        try {
          statSync(`${this.root}/l/${link}`);
        } catch {
          if (readlinkSync(`${this.root}/l/${link}`)) rmSync(`${this.root}/l/${link}`, { force: true });
        }
      }
      return removed;
    });
  }
}

/** The image a parsed reference names: by digest when it has one, else by name:tag. */
export function findRef(all: ImageRecord[], r: Reference): ImageRecord | null {
  if (r.digest) {
    const want = `${repoName(r)}@${r.digest}`;
    return all.find((i) => i.digests.includes(want) || i.id === r.digest) ?? null;
  }
  const full = formatReference(r);
  return all.find((i) => i.names.includes(full)) ?? null;
}
