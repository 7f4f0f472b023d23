// A container from an image: its config applied as docker applies it, and a part that mounts an
// overlay (the image's layers read-only below, the container's own upper directory on top) inside
// the container's mount namespace, so nothing of it shows on the host.
import { closeSync, constants as C, fstatSync, openSync, readSync } from 'node:fs';
import { constants, release } from 'node:os';
import { NsboxError } from '../errors.js';
import { fsops, MOUNT_ATTR, MS } from '../native.js';
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

/**
 * The container's copy-on-write directories, made now, and the part that mounts the overlay on
 * `rootfs` (its merged directory). `removeOnExit`: the directories go when PID 1 ends (library
 * containers; the CLI removes them with the container's state entry).
 */
export function overlayPart(
  store: Store,
  img: ImageRecord,
  id: string,
  run: ImageRun,
  removeOnExit: boolean,
  userns = false,
): { rootfs: string; part: StartPart } {
  // Root's layers belong to the host's ids: a user namespace would see them as nobody's (idmapped
  // mounts would fix that). Fail before anything is made.
  const rootless = process.geteuid?.() !== 0;
  if (userns && !rootless) {
    throw new NsboxError(
      "containers from images cannot use --userns as root yet (the layers belong to the host's ids)",
      {
        step: 'image',
      },
    );
  }
  // Rootless: the layers are the user's (root in the container), and overlay is mounted in the user
  // namespace, keeping its whiteout and opaque markers in user.* xattrs (Linux 5.11+).
  const extra = rootless ? ['userxattr'] : [];
  // A layer removed when the container ends needs no durability: `volatile` (5.10+) spares the
  // sync of the whole upper filesystem that unmounting an overlay does, as podman does for --rm.
  if (removeOnExit && kernelAtLeast(5, 10)) extra.push('volatile');
  const d = store.createContainer(id, img, run.stopSignal);
  const lower = [...img.layers].reverse().map((c) => store.layerLink(c)); // overlay lists the top first
  const cleanup = () => store.removeContainer(id);
  let data = '';
  // The addon takes at most 64 strings an op: longer chains go through mount(2) as well.
  if (!hasLowerdirPlus() || lower.length > FSMOUNT_LAYERS) {
    // mount(2) takes one page of options: layers are named relative to ROOT/l (the child's cwd
    // then), by 12 characters each, as containers/storage does.
    const short = [...img.layers]
      .reverse()
      .map((c) => store.layerLink(c).slice(store.layerLink(c).lastIndexOf('/') + 1));
    data = [`lowerdir=${short.join(':')}`, `upperdir=${d.upper}`, `workdir=${d.work}`, ...extra].join(',');
    if (data.length >= PAGE) {
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
      if (data) {
        b.add(
          'root',
          op.chdir(`${store.root}/l`),
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
    afterExit() {
      if (removeOnExit) cleanup();
    },
    abort: cleanup,
  };
  return { rootfs: d.merged, part };
}
