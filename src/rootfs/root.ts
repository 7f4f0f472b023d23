// The container's root: a private mount tree, pivot_root into ROOTFS (or a tmpfs holding
// read-only binds of the host's system directories), and fresh /proc, /sys and /dev.
import { MOUNT_ATTR, MS } from '../native.js';
import type { HostFacts } from '../host/facts.js';
import type { PlanBuilder } from '../plan/builder.js';
import * as op from '../plan/ops.js';
import type { Step } from '../plan/steps.js';
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
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
const DEV_LINKS: [string, string][] = [
  ['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'], ['pts/ptmx', '/dev/ptmx'],
];

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
      op.setattr(dst, MOUNT_ATTR.RDONLY | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOSUID, 0, true,
        `make ${dst} read-only, nodev and nosuid`),
    );
  }
  ops.push(op.mkdir(`${root}/tmp`, 0o1777), op.mkdir(`${root}/root`, 0o700), op.mkdir(`${root}/home`),
    op.mkdir(`${root}/run`));
  return ops;
}

/** /dev: a small tmpfs with bound host devices, a new devpts instance, shm and mqueue. */
function devOps(devSlots: number[], ttyGid: number | null): Step[] {
  const nosuid = MS.NOSUID, hard = MS.NOSUID | MS.NODEV | MS.NOEXEC;
  const ops: Step[] = [
    op.mkdir('/dev'),
    // nodev: a node made here by mknod opens nothing; the devices below are binds, mounts of their own.
    op.mount('tmpfs', '/dev', 'tmpfs', nosuid | MS.NODEV | MS.STRICTATIME, 'mode=755,size=65536k'),
  ];
  DEVICES.forEach((d, i) => ops.push(op.createFile(`/dev/${d}`, 0o666), op.moveMount(devSlots[i], `/dev/${d}`, `/dev/${d}`)));
  const gid = ttyGid === null ? '' : `,gid=${ttyGid}`;
  ops.push(
    op.mkdir('/dev/pts'),
    op.mount('devpts', '/dev/pts', 'devpts', MS.NOSUID | MS.NOEXEC, `newinstance,ptmxmode=0666,mode=0620${gid}`),
    op.mkdir('/dev/shm', 0o1777),
    op.mount('shm', '/dev/shm', 'tmpfs', hard, 'mode=1777,size=65536k'),
    op.mkdir('/dev/mqueue'),
    op.mount('mqueue', '/dev/mqueue', 'mqueue', hard),
  );
  for (const [target, path] of DEV_LINKS) ops.push(op.symlink(target, path));
  return ops;
}

/**
 * The root's steps, by phase. Host paths are only touched before pivot_root (binds are opened as
 * detached trees first); every mount after it resolves inside the new root.
 */
export function rootSteps(b: PlanBuilder, o: RootOptions, facts: HostFacts): void {
  const host = o.rootfs === 'host';
  const newRoot = host ? HOST_STAGE : o.rootfs;
  b.add('root', op.mount('', '/', '', MS.REC | MS.PRIVATE, '', 'make mount propagation private'));
  if (host) b.add('root', ...hostRoot(facts));
  else {
    b.add('root', op.mount(newRoot, newRoot, '', MS.BIND | MS.REC, '', `bind rootfs ${newRoot} onto itself`));
    // Every mount of a container is nodev: a node it makes with CAP_MKNOD opens nothing.
    if (o.nodev !== false) b.add('root', op.setattr(newRoot, MOUNT_ATTR.NODEV, 0, true, `make rootfs ${newRoot} nodev`));
  }
  const devSlots = DEVICES.map((d) => {
    const slot = b.slot(`/dev/${d}`);
    b.add('host', op.openTree(`/dev/${d}`, slot));
    return slot;
  });
  const procAttrs = MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC, sysAttrs = procAttrs | MOUNT_ATTR.RDONLY;
  const attach = (slot: number, target: string, what: string) =>
    ({ ...op.moveMount(slot, target, what), desc: `attach ${what} on ${target}` });
  b.add('pivot', op.pivotRoot(newRoot));
  b.add('system', op.mkdir('/proc'));
  if (o.userns) {
    const procSlot = b.slot('proc'), sysSlot = b.slot('sysfs');
    b.add('host',
      op.fsmount('proc', [], procSlot, procAttrs, 'mount proc'),
      op.orElse(op.fsmount('sysfs', [], sysSlot, sysAttrs, 'mount sysfs'), [op.openTree('/sys', sysSlot, true)]));
    b.add('system', attach(procSlot, '/proc', 'proc'), op.mkdir('/sys'), attach(sysSlot, '/sys', 'sysfs'),
      op.setattr('/sys', sysAttrs, 0, true, 'make /sys read-only'));
  } else {
    b.add('system', op.mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC), op.mkdir('/sys'),
      op.mount('sysfs', '/sys', 'sysfs', MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC));
  }
  b.add('system', ...devOps(devSlots, o.ttyGid === undefined ? 5 : o.ttyGid));
  // Host sources of volumes are opened before pivot_root, each into a slot of its own.
  const mounts = o.mounts ?? [];
  const scratch = [b.slot('scratch'), b.slot('scratch')];
  const slots = mounts.map((m) => b.slot(`the mount on ${m.target}`));
  b.add('host', ...openSourcesOps(mounts, slots, scratch[0]));
  b.add('mounts', ...attachOps(mounts, slots, scratch[0]));
  if (o.maskPaths !== false) b.add('protect', ...protectOps(facts.maskedPaths, scratch[0], scratch[1]));
  if (o.readOnly) b.add('protect', op.setattr('/', MOUNT_ATTR.RDONLY, 0, false, 'make the root read-only'));
}
