// A container from an image: its config applied as docker applies it, and a part that mounts an
// overlay (the image's layers read-only below, the container's own upper directory on top) inside
// the container's mount namespace, so nothing of it shows on the host.
import {
  chmodSync,
  chownSync,
  closeSync,
  constants as C,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
} from 'node:fs';
import { constants, release } from 'node:os';
import { dirname } from 'node:path';
import { NsboxError } from '../errors.js';
import { fsops, idmappedClone, MOUNT_ATTR, MS } from '../native.js';
import { formatIdMap, toHostId, type IdRange } from '../userns/idmap.js';
import * as op from '../plan/ops.js';
import type { StartPart } from '../plan/part.js';
import type { ImageConfig } from './commit.js';
import type { Store, ImageRecord } from './store.js';

const O_PATH = 0o10000000;
const PAGE = 4096;
/** Layers one fsmount op can list (the addon's 64 strings an op, less fstype, upper, work, userxattr). */
const FSMOUNT_LAYERS = 60;

export interface ImageRunOptions {
  /** Arguments after the image: they replace its Cmd. */
  args: string[];
  /** --entrypoint: replaces the image's Entrypoint and clears its Cmd ('' clears the entrypoint). */
  entrypoint?: string;
  env?: Record<string, string>;
  cwd?: string;
  user?: string | number;
}

export interface ImageRun {
  image: ImageRecord;
  config: ImageConfig;
  command: string[];
  env: Record<string, string>;
  cwd: string;
  /** uid:gid when the image or --user named one. */
  user?: string;
  groupAdd?: number[];
  stopSignal?: string;
}

function kernelAtLeast(major: number, minor: number, rel = release()): boolean {
  const [maj, min] = rel.split('.').map((n) => parseInt(n, 10));
  return maj > major || (maj === major && min >= minor);
}

/** The kernel takes lowerdir+ (one fsconfig call per layer, no length limit) from 6.8 on. */
export function hasLowerdirPlus(rel = release()): boolean {
  return kernelAtLeast(6, 8, rel);
}

/** A file of the image, read from the topmost layer that has it, resolved inside that layer. */
export function readImageFile(store: Store, img: ImageRecord, path: string, max = 1 << 20): string | null {
  for (const chain of [...img.layers].reverse()) {
    let root: number;
    try {
      root = openSync(`${store.layerDir(chain)}/diff`, C.O_DIRECTORY | C.O_NOFOLLOW | O_PATH);
    } catch {
      continue;
    }
    try {
      const fd = fsops.openIn(root, path, C.O_RDONLY | C.O_NONBLOCK);
      try {
        const st = fstatSync(fd);
        if (st.isCharacterDevice() && st.rdev === 0) return null; // a whiteout: deleted in this layer
        if (!st.isFile()) return null;
        const b = Buffer.alloc(Math.min(st.size, max));
        return b.subarray(0, readSync(fd, b, 0, b.length, 0)).toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
    } finally {
      closeSync(root);
    }
  }
  return null;
}

const isId = (s: string) => /^\d{1,10}$/.test(s);

/** `name[:group]` looked up in the image's own /etc/passwd and /etc/group (files, not NSS). */
function resolveImageUser(store: Store, img: ImageRecord, user: string): { user: string; groups: number[] } {
  const [u, g] = user.split(':');
  const rows = (f: string) =>
    (readImageFile(store, img, f) ?? '')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  let uid = u,
    gid = g,
    name = u;
  if (!isId(u)) {
    const e = rows('etc/passwd').find((r) => r[0] === u);
    if (!e || !isId(e[2] ?? ''))
      throw new NsboxError(`unable to find user ${u}: no matching entries in the image's /etc/passwd`, {
        step: 'user',
      });
    uid = e[2];
    gid ??= e[3];
  } else {
    const e = rows('etc/passwd').find((r) => r[2] === u);
    name = e?.[0] ?? u;
    gid ??= e?.[3] ?? '0';
  }
  const groups = rows('etc/group');
  if (gid !== undefined && !isId(gid)) {
    const e = groups.find((r) => r[0] === gid);
    if (!e || !isId(e[2] ?? ''))
      throw new NsboxError(`unable to find group ${gid}: no matching entries in the image's /etc/group`, {
        step: 'user',
      });
    gid = e[2];
  }
  const extra = groups
    .filter((r) => (r[3] ?? '').split(',').includes(name) && isId(r[2] ?? ''))
    .map((r) => Number(r[2]));
  return { user: `${uid}:${gid ?? '0'}`, groups: extra };
}

/** The command, environment, directory and user of a container from `img`, as docker computes them. */
export function imageRun(store: Store, img: ImageRecord, o: ImageRunOptions): ImageRun {
  const config = JSON.parse(store.readBlob(img.id).toString('utf8')) as ImageConfig;
  const c = config.config ?? {};
  const entry = o.entrypoint !== undefined ? (o.entrypoint === '' ? [] : [o.entrypoint]) : (c.Entrypoint ?? []);
  const cmd = o.args.length ? o.args : o.entrypoint !== undefined ? [] : (c.Cmd ?? []);
  const command = [...entry, ...cmd];
  if (command.length === 0)
    throw new NsboxError('no command specified: the image has no Entrypoint or Cmd (give a command)', {
      step: 'command',
    });
  const env: Record<string, string> = {};
  for (const kv of c.Env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  Object.assign(env, o.env ?? {});
  const stop = c.StopSignal ? c.StopSignal.toUpperCase().replace(/^(?!SIG)(?=\D)/, 'SIG') : undefined;
  if (stop && !/^\d{1,2}$/.test(stop) && !(stop in constants.signals)) {
    throw new NsboxError(`the image's StopSignal is not a signal: ${c.StopSignal}`, { step: 'image' });
  }
  const run: ImageRun = { image: img, config, command, env, cwd: o.cwd ?? (c.WorkingDir || '/'), stopSignal: stop };
  const user = o.user !== undefined ? String(o.user) : c.User;
  if (user) {
    const r = resolveImageUser(store, img, user);
    run.user = r.user;
    run.groupAdd = r.groups;
  }
  return run;
}

/** The container's id maps, for root's --userns: its layers are seen through an idmapped mount. */
export interface OverlayUserns {
  uidMap: IdRange[];
  gidMap: IdRange[];
}

/**
 * Root with a user namespace: the store's root, idmapped through a namespace with the container's
 * maps (so the layers' root-owned files are container root's), detached and read-only; the child
 * inherits its fd and attaches it in its own mount namespace. The container's directories become
 * container root's, and ROOT and ROOT/containers searchable (0711), for the overlay is mounted as
 * container root. Fails closed where the kernel or the store's filesystem cannot idmap.
 */
function idmappedStore(
  store: Store,
  d: { dir: string; upper: string; work: string; merged: string },
  u: OverlayUserns,
) {
  const uid = toHostId(u.uidMap, 0),
    gid = toHostId(u.gidMap, 0);
  if (uid === undefined || gid === undefined)
    throw new NsboxError('a container from an image needs container root (id 0) in its --uidmap and --gidmap', {
      step: 'image',
    });
  // The overlay is mounted as container root, which must be able to reach the store's directories.
  for (let p = dirname(store.root); ; p = dirname(p)) {
    const st = statSync(p);
    if (!(st.mode & 0o001) && st.uid !== uid)
      throw new NsboxError(
        `--userns with an image: container root (host uid ${uid}) cannot reach the image store ${store.root}: ` +
          `${p} is not searchable by others (chmod o+x ${p}, or set NSBOX_STORAGE_DIR)`,
        { step: 'image' },
      );
    if (p === '/') break;
  }
  mkdirSync(`${d.dir}/lower`, { mode: 0o755 });
  for (const p of [d.dir, d.upper, d.work, d.merged, `${d.dir}/lower`]) chownSync(p, uid, gid);
  for (const p of [store.root, `${store.root}/containers`]) {
    const st = statSync(p);
    if ((st.mode & 0o111) !== 0o111) chmodSync(p, (st.mode & 0o7777) | 0o711);
  }
  try {
    const attrs = MOUNT_ATTR.RDONLY | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOSUID;
    return idmappedClone(store.root, formatIdMap(u.uidMap), formatIdMap(u.gidMap), attrs);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NsboxError(
      `--userns with an image needs idmapped mounts of the image store (${store.root}), which this kernel ` +
        `(${release()}) or that filesystem cannot do: ${err.message}`,
      { step: 'image', code: err.code },
    );
  }
}

/**
 * The container's copy-on-write directories, made now, and the part that mounts the overlay on
 * `rootfs` (its merged directory). `removeOnExit`: the directories go when PID 1 ends (library
 * containers; the CLI removes them with the container's state entry). `userns`: root's container
 * in a user namespace, with its maps.
 */
export function overlayPart(
  store: Store,
  img: ImageRecord,
  id: string,
  run: ImageRun,
  removeOnExit: boolean,
  userns?: OverlayUserns,
): { rootfs: string; part: StartPart } {
  const rootless = process.geteuid?.() !== 0;
  const mapped = !!userns && !rootless;
  // Overlay mounted in a user namespace keeps its whiteout and opaque markers in user.* xattrs
  // (Linux 5.11+): rootless, the layers are the user's; root's --userns sees them idmapped.
  const extra = rootless || mapped ? ['userxattr'] : [];
  // A layer removed when the container ends needs no durability: `volatile` (5.10+) spares the
  // sync of the whole upper filesystem that unmounting an overlay does, as podman does for --rm.
  if (removeOnExit && kernelAtLeast(5, 10)) extra.push('volatile');
  const d = store.createContainer(id, img, run.stopSignal);
  const cleanup = () => store.removeContainer(id);
  let tree = -1;
  const closeTree = () => {
    if (tree >= 0) closeSync(tree);
    tree = -1;
  };
  try {
    if (mapped) tree = idmappedStore(store, d, userns);
  } catch (e) {
    cleanup();
    throw e;
  }
  // The layers' short links (l/SHORT -> ../layers/HEX/diff), through the idmapped store when mapped.
  const base = mapped ? `${d.dir}/lower` : store.root;
  const short = [...img.layers].reverse().map((c) => store.layerLink(c).slice(store.layerLink(c).lastIndexOf('/') + 1));
  const lower = short.map((s) => `${base}/l/${s}`); // overlay lists the top first
  let data = '';
  // The addon takes at most 64 strings an op: longer chains go through mount(2) as well.
  if (!hasLowerdirPlus() || lower.length > FSMOUNT_LAYERS) {
    // mount(2) takes one page of options: layers are named relative to BASE/l (the child's cwd
    // then), by 12 characters each, as containers/storage does.
    data = [`lowerdir=${short.join(':')}`, `upperdir=${d.upper}`, `workdir=${d.work}`, ...extra].join(',');
    if (data.length >= PAGE) {
      closeTree();
      cleanup();
      throw new NsboxError(
        `image ${img.id.slice(7, 19)} has too many layers (${lower.length}) for this kernel's overlay options ` +
          '(needs Linux 6.8 for more)',
        { step: 'overlay' },
      );
    }
  }
  const part: StartPart = {
    steps(b) {
      if (tree >= 0) {
        // Taken into a slot before the root is built, attached where the overlay's lowers are named.
        const slot = b.slot('the idmapped image store');
        b.keepOpen(tree);
        b.add('namespaces', op.takeFd(tree, slot, 'the idmapped image store'));
        b.add('root', op.moveMount(slot, `${d.dir}/lower`, 'the idmapped image store'));
      }
      if (data) {
        b.add(
          'root',
          op.chdir(`${base}/l`),
          op.mount('overlay', d.merged, 'overlay', MS.NODEV, data, 'mount the image overlay'),
        );
      } else {
        // Made detached, then attached on the merged directory (after the 'root' phase made propagation
        // private and bound the directory onto itself), so pivot_root goes into the overlay.
        const slot = b.slot('the image overlay');
        b.add(
          'root',
          op.fsmount(
            'overlay',
            [...lower.map((l) => `lowerdir+=${l}`), `upperdir=${d.upper}`, `workdir=${d.work}`, ...extra],
            slot,
            MOUNT_ATTR.NODEV,
            'mount the image overlay',
          ),
          op.moveMount(slot, d.merged, 'the image overlay'),
        );
      }
      // The working directory is made if missing (after pivot_root: resolved inside the root).
      const parts = run.cwd.split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) b.add('mounts', op.mkdir(`/${parts.slice(0, i).join('/')}`));
    },
    // The child has its copy of the idmapped store's fd once it exists (started comes after the clone; a
    // beforeRelease would make every image run wait on the sync pipe, off the vfork path).
    started: closeTree,
    afterExit() {
      closeTree();
      if (removeOnExit) cleanup();
    },
    abort() {
      closeTree();
      cleanup();
    },
  };
  return { rootfs: d.merged, part };
}
