// The container's root: a private mount tree, pivot_root into ROOTFS (or a tmpfs holding
// read-only binds of the host's system directories), and fresh /proc, /sys and /dev.
import { MOUNT_ATTR, MS } from '../native.js';
import type { HostFacts } from '../host/facts.js';
import type { PlanBuilder } from '../plan/builder.js';
import * as op from '../plan/ops.js';
import type { Step } from '../plan/steps.js';
import { attachOps, openSourcesOps, protectOps, type ResolvedMount } from './mounts.js';
import type { ResolvedDevice } from '../devices/spec.js';
import { NsboxError } from '../errors.js';

export interface RootOptions {
  /** An absolute directory, or 'host'. */
  rootfs: string;
  readOnly?: boolean;
  /**
   * In a user namespace the kernel mounts proc and sysfs only while the host's are in sight, so they
   * are made detached before pivot_root; if sysfs is refused, the host's /sys is bound read-only (as crun does).
   */
  userns?: boolean;
  /** devpts' gid= option (tty group); null leaves it out, for when gid 5 is not mapped. Default 5. */
  ttyGid?: number | null;
  /** Volumes, tmpfs mounts and device binds (src/rootfs/mounts.ts), in order. */
  mounts?: ResolvedMount[];
  /** Default true: mask and make read-only the OCI default paths of /proc and /sys. */
  maskPaths?: boolean;
  /** Default true: the rootfs is nodev, so a node made in it opens nothing (false: --privileged). */
  nodev?: boolean;
  /** Devices made in /dev by number (src/devices/spec.ts `node`), after the default ones. */
  made?: ResolvedDevice[];
}

/** Where the tmpfs for a 'host' root is staged, inside the child's own mount namespace. */
const HOST_STAGE = '/tmp';
/** The default devices: name, major, minor. */
const DEVICES: [string, number, number][] = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
  ['tty', 5, 0],
];
const DEV_LINKS: [string, string][] = [
  ['/proc/self/fd', 'fd'],
  ['/proc/self/fd/0', 'stdin'],
  ['/proc/self/fd/1', 'stdout'],
  ['/proc/self/fd/2', 'stderr'],
  ['pts/ptmx', 'ptmx'],
];
const S_IFCHR = 0o020000,
  S_IFBLK = 0o060000,
  S_IFREG = 0o100000;
const HARD = MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC;

/**
 * The slots the root's steps share with the other parts of the plan: the mounted /proc, /sys and
 * /dev (kept open: what is done inside them is relative to them, src/cgroups and src/tty use them
 * too), and scratch slots.
 */
export const rootSlots = (b: PlanBuilder) => ({
  proc: b.shared('proc'),
  sys: b.shared('sys'),
  dev: b.shared('dev'),
  a: b.shared('a'),
  b: b.shared('b'),
  c: b.shared('c'),
});

function hostRoot(facts: HostFacts): Step[] {
  const root = HOST_STAGE;
  const ops: Step[] = [
    op.mount('tmpfs', root, 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=755', `mount tmpfs for the host root on ${root}`),
  ];
  for (const e of facts.hostDirs) {
    const dst = `${root}/${e.name}`;
    if (e.link !== undefined) {
      ops.push(op.symlink(e.link, dst));
      continue;
    }
    ops.push(
      op.mkdir(dst),
      op.mount(`/${e.name}`, dst, '', MS.BIND | MS.REC, '', `bind /${e.name} on ${dst}`),
      op.setattr(
        dst,
        MOUNT_ATTR.RDONLY | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOSUID,
        0,
        true,
        `make ${dst} read-only, nodev and nosuid`,
      ),
    );
  }
  ops.push(
    op.mkdir(`${root}/tmp`, 0o1777),
    op.mkdir(`${root}/root`, 0o700),
    op.mkdir(`${root}/home`),
    op.mkdir(`${root}/run`),
  );
  return ops;
}

const notSymlink = (path: string) => ({
  ELOOP: `${path} is a symlink in the rootfs (it must be a directory)`,
  ENOTDIR: `${path} is not a directory in the rootfs`,
});

/**
 * /dev: a small tmpfs attached to the rootfs' own /dev, everything in it made relative to it.
 * Without a user namespace the devices are nodes of our own (mknod), each bound onto itself so it
 * opens while the tmpfs stays nodev; in one, the host's nodes bound read-only (`hostDevs`): nothing
 * the container does reaches a host inode. Then a new devpts instance, shm, mqueue and the usual links.
 */
function devOps(s: ReturnType<typeof rootSlots>, hostDevs: number[] | null, ttyGid: number | null): Step[] {
  const { dev, a, b } = s;
  const ops: Step[] = [
    op.fsmount(
      'tmpfs',
      ['source=tmpfs', 'mode=755', 'size=65536k'],
      dev,
      MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV,
      'make a tmpfs for /dev',
    ),
    {
      ...op.openAt('/dev', a, op.OPEN_AT.DIR | op.OPEN_AT.NOSYMLINKS, 'open /dev in the rootfs'),
      why: notSymlink('/dev'),
    },
    op.attach(dev, a, 'mount tmpfs on /dev'),
  ];
  DEVICES.forEach(([name, major, minor], i) => {
    const path = `/dev/${name}`;
    if (hostDevs) {
      ops.push(
        op.mknodAt(dev, name, S_IFREG | 0o666, 0, 0, `create ${path}`),
        op.openBeneath(dev, name, a, 0, `open ${path}`),
        op.moveMountTo(hostDevs[i], a, `bind the host's ${path} read-only on ${path}`),
      );
    } else {
      ops.push(
        op.mknodAt(dev, name, S_IFCHR | 0o666, major, minor, `mknod ${path}`),
        op.openBeneath(dev, name, a, 0, `open ${path}`),
        op.cloneTree(a, b, false, `make a bind of ${path}`),
        op.setattrSlot(b, 0, MOUNT_ATTR.NODEV, false, `let ${path} open as a device`),
        op.moveMountTo(b, a, `bind ${path} onto itself`),
      );
    }
  });
  const sub = (name: string, fs: string, options: string[], attrs: number): Step[] => [
    op.openBeneath(dev, name, a, op.OPEN_AT.DIR, `make /dev/${name}`),
    op.fsmount(fs, [`source=${fs === 'tmpfs' ? name : fs}`, ...options], b, attrs, `make a ${fs} for /dev/${name}`),
    op.moveMountTo(b, a, `mount ${fs} on /dev/${name}`),
  ];
  ops.push(
    ...sub(
      'pts',
      'devpts',
      ['newinstance', 'ptmxmode=0666', 'mode=0620', ...(ttyGid === null ? [] : [`gid=${ttyGid}`])],
      MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC,
    ),
    ...sub('shm', 'tmpfs', ['mode=1777', 'size=65536k'], HARD),
    ...sub('mqueue', 'mqueue', [], HARD),
  );
  for (const [target, name] of DEV_LINKS)
    ops.push(op.symlinkAt(dev, target, name, `symlink /dev/${name} -> ${target}`));
  return ops;
}

/** Devices made by number in /dev (its subdirectories made as needed), each bound onto itself as the default ones. */
function madeOps(b: PlanBuilder, s: ReturnType<typeof rootSlots>, o: RootOptions): Step[] {
  const made = o.made ?? [];
  if (made.length === 0) return [];
  if (o.userns)
    throw new NsboxError(`device ${made[0].path}: device nodes cannot be made in a user namespace`, {
      field: 'devices',
    });
  const { dev, a } = s;
  const c = b.slot('a directory of /dev');
  return made.flatMap((d) => {
    const rel = d.path.slice('/dev/'.length);
    const slash = rel.lastIndexOf('/');
    const at = slash < 0 ? dev : c;
    const name = rel.slice(slash + 1);
    const m = d.made!;
    return [
      ...(slash < 0
        ? []
        : [op.openBeneath(dev, rel.slice(0, slash), c, op.OPEN_AT.DIR, `make /dev/${rel.slice(0, slash)}`)]),
      op.mknodAt(
        at,
        name,
        (d.type === 'b' ? S_IFBLK : S_IFCHR) | m.mode,
        d.major,
        d.minor,
        `mknod ${d.path}`,
        m.uid,
        m.gid,
      ),
      op.openBeneath(at, name, a, 0, `open ${d.path}`),
      op.cloneTree(a, s.b, false, `make a bind of ${d.path}`),
      op.setattrSlot(s.b, 0, MOUNT_ATTR.NODEV, false, `let ${d.path} open as a device`),
      op.moveMountTo(s.b, a, `bind ${d.path} onto itself`),
    ];
  });
}

/**
 * The root's steps, by phase. Host paths are only touched before pivot_root (binds are opened as
 * detached trees first, proc and sysfs made); after it, /proc, /sys and /dev must be real
 * directories of the rootfs (a symlink is refused), the filesystems are attached to their fds, and
 * what is done inside them (masks, read-only paths, /dev's contents) is relative to the mounted
 * tree, never a path a rename in the rootfs could move. Their slots are closed after setsid.
 */
export function rootSteps(b: PlanBuilder, o: RootOptions, facts: HostFacts): void {
  const host = o.rootfs === 'host';
  const newRoot = host ? HOST_STAGE : o.rootfs;
  const slots = rootSlots(b);
  const { proc, sys, a } = slots;
  b.add('root', op.mount('', '/', '', MS.REC | MS.PRIVATE, '', 'make mount propagation private'));
  if (host) b.add('root', ...hostRoot(facts));
  else {
    b.add('root', op.mount(newRoot, newRoot, '', MS.BIND | MS.REC, '', `bind rootfs ${newRoot} onto itself`));
    // Every mount of a container is nodev: a node it makes with CAP_MKNOD opens nothing.
    if (o.nodev !== false)
      b.add('root', op.setattr(newRoot, MOUNT_ATTR.NODEV, 0, true, `make rootfs ${newRoot} nodev`));
  }
  // In a user namespace mknod is refused: the host's nodes, bound read-only (so chmod is EROFS).
  const hostDevs = o.userns
    ? DEVICES.map(([name]) => {
        const slot = b.slot(`/dev/${name}`);
        b.add(
          'host',
          op.openTree(`/dev/${name}`, slot),
          op.setattrSlot(
            slot,
            MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC,
            0,
            false,
            `make the bind of the host's /dev/${name} read-only`,
          ),
        );
        return slot;
      })
    : null;
  // proc and sysfs before pivot_root: in a user namespace the kernel mounts them only while the host's are in sight.
  const sysAttrs = HARD | MOUNT_ATTR.RDONLY;
  b.add('host', op.fsmount('proc', ['source=proc'], proc, HARD, 'mount proc'));
  const sysfs = op.fsmount('sysfs', ['source=sysfs'], sys, sysAttrs, 'mount sysfs');
  // Without a user namespace, made after /dev's mounts: mountinfo lists mounts in the order they were
  // made, and an OCI config's default mounts are /proc, /dev..., then /sys (the runtime spec's "in order").
  if (o.userns) b.add('host', op.orElse(sysfs, [op.openTree('/sys', sys, true)]));
  // Host sources of volumes are opened here, before pivot_root, each into a slot of its own.
  const mounts = o.mounts ?? [];
  const volSlots = mounts.map((m) => b.slot(`the mount on ${m.target}`));
  b.add('host', ...openSourcesOps(mounts, volSlots, a));
  b.add('pivot', op.pivotRoot(newRoot));
  b.add(
    'system',
    {
      ...op.openAt('/proc', a, op.OPEN_AT.DIR | op.OPEN_AT.NOSYMLINKS, 'open /proc in the rootfs'),
      why: notSymlink('/proc'),
    },
    op.attach(proc, a, 'mount proc on /proc'),
    ...devOps(slots, hostDevs, o.ttyGid === undefined ? 5 : o.ttyGid),
    ...madeOps(b, slots, o),
    ...(o.userns ? [] : [sysfs]),
    {
      ...op.openAt('/sys', a, op.OPEN_AT.DIR | op.OPEN_AT.NOSYMLINKS, 'open /sys in the rootfs'),
      why: notSymlink('/sys'),
    },
    op.attach(sys, a, 'mount sysfs on /sys'),
    op.setattrSlot(sys, sysAttrs, 0, true, 'make /sys read-only'),
  );
  b.add('mounts', ...attachOps(mounts, volSlots, a));
  if (o.maskPaths !== false) b.add('protect', ...protectOps(slots));
  if (o.readOnly) b.add('protect', op.setattr('/', MOUNT_ATTR.RDONLY, 0, false, 'make the root read-only'));
  // Nothing more is done inside /proc, /sys, /dev: their fds go before anything resolves a path of the container's.
  b.add('session', op.closeSlots([proc, sys, slots.dev], 'the fds of /proc, /sys and /dev'));
}
