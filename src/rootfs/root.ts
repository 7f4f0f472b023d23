// The container's root: a private mount tree, pivot_root into ROOTFS (or a tmpfs holding
// read-only binds of the host's system directories), and fresh /proc, /sys and /dev.
import { lstatSync, readlinkSync } from 'node:fs';
import { MOUNT_ATTR, MS } from '../native.js';
import { NsboxError } from '../errors.js';
import * as op from '../plan/ops.js';
import type { Op } from '../plan/ops.js';
import { attachOps, openSourcesOps, protectOps, type ResolvedMount } from './mounts.js';

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
}

/** Where the tmpfs for a 'host' root is staged, inside the child's own mount namespace. */
const HOST_STAGE = '/tmp';
const HOST_DIRS = ['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'etc'];
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
const DEV_LINKS: [string, string][] = [
  ['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'], ['pts/ptmx', '/dev/ptmx'],
];

type HostEntry = { name: string; link?: string };
let hostEntries: HostEntry[] | undefined;

/** The host's system directories as they are: a directory to bind, or a symlink to copy. */
function hostLayout(): HostEntry[] {
  if (hostEntries) return hostEntries;
  hostEntries = [];
  for (const name of HOST_DIRS) {
    try {
      const st = lstatSync(`/${name}`);
      if (st.isSymbolicLink()) hostEntries.push({ name, link: readlinkSync(`/${name}`) });
      else if (st.isDirectory()) hostEntries.push({ name });
    } catch { /* not on this host */ }
  }
  return hostEntries;
}

function hostRoot(): Op[] {
  const root = HOST_STAGE;
  const ops: Op[] = [op.mount('tmpfs', root, 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=755', `mount tmpfs for the host root on ${root}`)];
  for (const e of hostLayout()) {
    const dst = `${root}/${e.name}`;
    if (e.link !== undefined) {
      ops.push(op.symlink(e.link, dst));
      continue;
    }
    ops.push(
      op.mkdir(dst),
      op.mount(`/${e.name}`, dst, '', MS.BIND | MS.REC, '', `bind /${e.name} on ${dst}`),
      op.setattr(dst, MOUNT_ATTR.RDONLY | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOSUID, 0, true, `make ${dst} read-only, nodev and nosuid`),
    );
  }
  ops.push(op.mkdir(`${root}/tmp`, 0o1777), op.mkdir(`${root}/root`, 0o700), op.mkdir(`${root}/home`), op.mkdir(`${root}/run`));
  return ops;
}

/** /dev: a small tmpfs with bound host devices, a new devpts instance, shm and mqueue. */
function devOps(firstSlot: number, ttyGid: number | null): Op[] {
  const nosuid = MS.NOSUID, hard = MS.NOSUID | MS.NODEV | MS.NOEXEC;
  const ops: Op[] = [
    op.mkdir('/dev'),
    // nodev: a node made here by mknod opens nothing; the devices below are binds, mounts of their own.
    op.mount('tmpfs', '/dev', 'tmpfs', nosuid | MS.NODEV | MS.STRICTATIME, 'mode=755,size=65536k'),
  ];
  DEVICES.forEach((d, i) => ops.push(op.createFile(`/dev/${d}`, 0o666), op.moveMount(firstSlot + i, `/dev/${d}`, `/dev/${d}`)));
  ops.push(
    op.mkdir('/dev/pts'),
    op.mount('devpts', '/dev/pts', 'devpts', MS.NOSUID | MS.NOEXEC, `newinstance,ptmxmode=0666,mode=0620${ttyGid === null ? '' : `,gid=${ttyGid}`}`),
    op.mkdir('/dev/shm', 0o1777),
    op.mount('shm', '/dev/shm', 'tmpfs', hard, 'mode=1777,size=65536k'),
    op.mkdir('/dev/mqueue'),
    op.mount('mqueue', '/dev/mqueue', 'mqueue', hard),
  );
  for (const [target, path] of DEV_LINKS) ops.push(op.symlink(target, path));
  return ops;
}

/**
 * Ops that build the root. Host paths are only touched before pivot_root (binds are opened
 * as detached trees first); every mount after it resolves inside the new root.
 */
export function rootOps(o: RootOptions, firstSlot = 0): Op[] {
  const host = o.rootfs === 'host';
  const newRoot = host ? HOST_STAGE : o.rootfs;
  const ops: Op[] = [op.mount('', '/', '', MS.REC | MS.PRIVATE, '', 'make mount propagation private')];
  if (host) ops.push(...hostRoot());
  else {
    ops.push(
      op.mount(newRoot, newRoot, '', MS.BIND | MS.REC, '', `bind rootfs ${newRoot} onto itself`),
    );
    // Every mount of a container is nodev: a node it makes with CAP_MKNOD opens nothing.
    if (o.nodev !== false) ops.push(op.setattr(newRoot, MOUNT_ATTR.NODEV, 0, true, `make rootfs ${newRoot} nodev`));
  }
  DEVICES.forEach((d, i) => ops.push(op.openTree(`/dev/${d}`, firstSlot + i)));
  const procSlot = firstSlot + DEVICES.length, sysSlot = procSlot + 1;
  const procAttrs = MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC, sysAttrs = procAttrs | MOUNT_ATTR.RDONLY;
  if (o.userns) {
    ops.push(
      op.fsmount('proc', [], procSlot, procAttrs, 'mount proc'),
      ...op.orElse(op.fsmount('sysfs', [], sysSlot, sysAttrs, 'mount sysfs'), [op.openTree('/sys', sysSlot, true)]),
    );
  }
  // Two scratch slots, then one per volume: host sources are opened here, before pivot_root.
  const scratch = firstSlot + ROOT_SLOTS, volSlot = scratch + 2, mounts = o.mounts ?? [];
  if (volSlot + mounts.length > PLAN_SLOTS) throw new NsboxError(`too many mounts: ${mounts.length} (at most ${PLAN_SLOTS - volSlot})`, { step: 'mounts' });
  ops.push(...openSourcesOps(mounts, volSlot, scratch));
  const attach = (slot: number, target: string, what: string) => ({ ...op.moveMount(slot, target, what), desc: `attach ${what} on ${target}` });
  ops.push(
    op.pivotRoot(newRoot),
    op.mkdir('/proc'),
    o.userns ? attach(procSlot, '/proc', 'proc') : op.mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC),
    op.mkdir('/sys'),
    ...(o.userns
      ? [attach(sysSlot, '/sys', 'sysfs'), op.setattr('/sys', sysAttrs, 0, true, 'make /sys read-only')]
      : [op.mount('sysfs', '/sys', 'sysfs', MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC)]),
    ...devOps(firstSlot, o.ttyGid === undefined ? 5 : o.ttyGid),
    ...attachOps(mounts, volSlot, scratch),
    ...(o.maskPaths === false ? [] : protectOps(scratch, scratch + 1)),
  );
  if (o.readOnly) ops.push(op.setattr('/', MOUNT_ATTR.RDONLY, 0, false, 'make the root read-only'));
  return ops;
}

/** The addon's number of slots (PLAN_SLOTS in native/plan.h). */
const PLAN_SLOTS = 64;

/** Slots used by rootOps for detached bind mounts (not counting volumes). */
export const ROOT_SLOTS = DEVICES.length + 2;
