// The addon's low-level calls, typed. Everything here is one syscall or one clone();
// policy lives in the rest of src/. See README "Low level" for what is safe to call.
import { closeSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface PlanOp {
  op: number;
  s?: string[];
  n?: number[];
  b?: Buffer;
  /** The next `alt` ops are this one's fallback: run only when it fails, skipped when it works. */
  alt?: number;
}

export interface SpawnRequest {
  /** CLONE_NEW* flags for clone3(). */
  flags: number;
  /** A cgroup v2 directory fd: the child starts in it (CLONE_INTO_CGROUP). */
  cgroupFd?: number;
  /** The child waits at each OP_WAIT_SYNC step for a byte on syncFd. */
  sync?: boolean;
  /** CLONE_PARENT: the child is our parent's (nsbox-monitor's), which reaps it; we cannot. */
  parent?: boolean;
  /** The plan: op objects, or the same as one Buffer (src/plan/wire.ts), which the addon copies in at once. */
  ops: PlanOp[] | Buffer;
}

export interface SpawnedChild {
  pid: number;
  pidfd: number;
  /** Read end of a close-on-exec pipe: EOF once exec succeeded, else 8 bytes (step, errno). */
  errFd: number;
  /** Write end of the sync pipe, or -1. */
  syncFd: number;
}

export interface WaitStatus {
  code: number | null;
  signal: number | null;
  userUs: number;
  systemUs: number;
  maxRssKb: number;
}

export interface Native {
  spawn(req: SpawnRequest): SpawnedChild;
  /** spawn() with the clone (and the wait until a vfork'd child has exec'd) on a thread of libuv's pool. */
  spawnAsync(req: SpawnRequest): Promise<SpawnedChild>;
  /**
   * A plan held before exec, vfork'd from a thread of its own (native/nsbox.c): the pid is known through
   * heldChild(handle) once errFd is readable.
   */
  spawnHeld(req: SpawnRequest): { errFd: number; syncFd: number; handle: object };
  /** The pid and pidfd of spawnHeld's child; throws when the clone failed. */
  heldChild(handle: object): { pid: number; pidfd: number };
  /** Calls cb once when fd is readable (libuv poll; keeps the loop alive until then). */
  watchReadable(fd: number, cb: (status: number) => void): void;
  /** waitid(P_PIDFD, WNOHANG): the status, or null while the process runs. */
  waitPidfd(pidfd: number): WaitStatus | null;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): void;
  /** pipe2(O_CLOEXEC): [read, write]. */
  pipe(): [number, number];
  unshare(flags: number): void;
  setns(fd: number, nstype?: number): void;
  pivotRoot(newRoot: string, putOld: string): void;
  mount(source: string | null, target: string, fstype: string | null, flags?: number, data?: string | null): void;
  umount(target: string, flags?: number): void;
  sethostname(name: string): void;
  /** flock(2); op: LOCK_SH 1, LOCK_EX 2, LOCK_NB 4, LOCK_UN 8. False when LOCK_NB found it held. */
  flock(fd: number, op: number): boolean;
  /** getrlimit(2) of this process: [soft, hard], -1 for unlimited. */
  getrlimit(resource: number): [number, number];
  /** A new pseudo-terminal pair (both close-on-exec) and the slave's path. */
  openpty(): { master: number; slave: number; path: string };
  /** A pseudo-terminal pair from the devpts of the root at rootPath (e.g. /proc/PID/root), opened inside it. */
  openptyIn(rootPath: string): { master: number; slave: number; path: string };
  /** TIOCSWINSZ on a terminal fd. */
  setWinsize(fd: number, rows: number, cols: number): void;
  /** bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program (eBPF instructions): its fd, close-on-exec. */
  bpfLoadDeviceProgram(insns: Buffer): number;
  /** bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) of a program to a cgroup v2 directory fd. */
  bpfAttachDevice(progFd: number, cgroupFd: number): void;
  /** Connect to a unix socket and send `fd` over it with SCM_RIGHTS (native/hold.c). */
  sendFd(socketPath: string, fd: number): void;
  mkfifo(path: string, mode: number): void;
  /** Whether binding ADDRESS:PORT fails with EADDRINUSE (native/net.c). */
  portInUse(family: 4 | 6, udp: boolean, address: string, port: number): boolean;
  /** One request on a stream unix socket, the reply read until the peer closes (native/net.c). */
  unixRequest(path: string, request: string, timeoutMs: number): string;
}

export { wire } from './plan/wire.js';

const require = createRequire(import.meta.url);
export const native: Native = require('../build/Release/nsbox.node');

/** The detached containers' monitor (native/monitor.c), built beside the addon. */
export function monitorPath(): string {
  return new URL('../build/Release/nsbox-monitor', import.meta.url).pathname;
}

export const {
  spawn,
  spawnAsync,
  spawnHeld,
  heldChild,
  watchReadable,
  waitPidfd,
  pidfdOpen,
  pidfdSendSignal,
  pipe,
  unshare,
  setns,
  pivotRoot,
  mount,
  umount,
  sethostname,
  flock,
  openpty,
  openptyIn,
  setWinsize,
  portInUse,
  unixRequest,
} = native;

export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  REMOUNT: 32,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  STRICTATIME: 1 << 24,
} as const;

export const MOUNT_ATTR = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8 } as const;
export const MNT_DETACH = 2;

export interface FsStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
}

/** File-system calls relative to directory fds (native/fsops.c), for applying image layers. */
export interface FsOps {
  /** openat2(rootFd, path, {flags, mode, resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve}). */
  openIn(rootFd: number, path: string, flags: number, mode?: number, resolve?: number): number;
  /** openat(dirFd, name, flags, mode) of one name under a resolved parent. */
  openAt(dirFd: number, name: string, flags: number, mode?: number): number;
  mkdirAt(dirFd: number, name: string, mode: number): void;
  symlinkAt(target: string, dirFd: number, name: string): void;
  /** linkat without AT_SYMLINK_FOLLOW: a symlink is linked itself, never its target. */
  linkAt(oldDirFd: number, oldName: string, newDirFd: number, newName: string): void;
  mknodAt(dirFd: number, name: string, mode: number, major: number, minor: number): void;
  /** fchownat(AT_SYMLINK_NOFOLLOW); name '' is dirFd itself. */
  lchownAt(dirFd: number, name: string, uid: number, gid: number): void;
  /** chmod of an fd's inode (O_PATH fds too); ELOOP on a symlink. */
  fchmodFd(fd: number, mode: number): void;
  utimensAt(dirFd: number, name: string, aSec: number, aNsec: number, mSec: number, mNsec: number): void;
  unlinkAt(dirFd: number, name: string, flags?: number): void;
  renameAt(oldDirFd: number, oldName: string, newDirFd: number, newName: string): void;
  /** fstatat(AT_SYMLINK_NOFOLLOW) of the entry itself; null when missing. */
  statAt(dirFd: number, name: string): FsStat | null;
  /** fsetxattr; an O_PATH fd (a symlink, a device node) through its /proc/self/fd link. */
  fsetxattr(fd: number, name: string, value: Buffer): void;
  /** null when the attribute is not set (O_PATH fds too). */
  fgetxattr(fd: number, name: string): Buffer | null;
  /** The names of an fd's extended attributes (O_PATH fds too); [] where the filesystem has none. */
  flistxattr(fd: number): string[];
  readlinkAt(dirFd: number, name: string): string;
}

export const fsops: FsOps = native as unknown as FsOps;

/** Idmapped mounts (native/idmap.c): root's containers from images in a user namespace, OCI idmapped binds. */
export interface IdmapOps {
  /** An fd of a new user namespace with these maps (uid_map / gid_map text). */
  usernsFd(uidMap: string, gidMap: string): number;
  /** A detached clone of the mount at `path`, its ids mapped through the namespace, with MOUNT_ATTR_* set. */
  idmappedTree(path: string, usernsFd: number, attrs: number): number;
}

export const idmap: IdmapOps = native as unknown as IdmapOps;

/**
 * A detached clone of the mount at `path` idmapped through a new user namespace with these maps (closed after).
 * The path is resolved first; the addon then refuses a symlink met on it (one swapped in meanwhile).
 */
export function idmappedClone(path: string, uidMap: string, gidMap: string, attrs: number): number {
  const real = realpathSync(path);
  const ns = idmap.usernsFd(uidMap, gidMap);
  try {
    return idmap.idmappedTree(real, ns, attrs);
  } finally {
    closeSync(ns);
  }
}
