// Builders for the plan the child runs between clone() and execve() (see native/plan.h).
// Each op carries a description so a failing step can be named in words.
import type { PlanOp } from '../native.js';

export const OP = {
  MOUNT: 0, MKDIR: 1, PIVOT_ROOT: 2, UMOUNT: 3, SETHOSTNAME: 4, LOOPBACK_UP: 5, DUP2: 6, CHDIR: 7,
  SETRLIMIT: 8, EXEC: 9, SYMLINK: 10, CREATE_FILE: 11, SETATTR: 12, WAIT_SYNC: 13, SETSID: 14, SETNS: 15,
  UNSHARE: 16, PRCTL: 17, SETGROUPS: 18, SETRESGID: 19, SETRESUID: 20, CAPS: 21, SECCOMP: 22, CLOSE_FDS: 23,
  OPEN_TREE: 24, MOVE_MOUNT: 25, INIT: 26, UMASK: 27, WRITE_FILE: 28, SET_TTY: 29, CLOSE: 30,
  OPEN_AT: 31, MOVE_MOUNT_TO: 32, FSMOUNT: 33, CLONE_TREE: 34, SETATTR_SLOT: 35, USERNS_ROOT: 36,
  CHDIR_IN_ROOT: 37, OPEN_BENEATH: 38, ATTACH: 39, MKNOD_AT: 40, SYMLINK_AT: 41, MASK_AT: 42, CLOSE_SLOTS: 43,
} as const;

export interface Op extends PlanOp {
  desc: string;
  /** For exec: the command as the user typed it. */
  command?: string;
  /** What an errno means for this step, said instead of the errno's text (e.g. ELOOP: 'is a symlink'). */
  why?: Record<string, string>;
}

export const mount = (src: string, target: string, fstype: string, flags: number, data = '', desc?: string): Op =>
  ({ op: OP.MOUNT, s: [src, target, fstype, data], n: [flags], desc: desc ?? `mount ${fstype || src} on ${target}` });
export const mkdir = (path: string, mode = 0o755): Op => ({ op: OP.MKDIR, s: [path], n: [mode], desc: `mkdir ${path}` });
export const pivotRoot = (root: string): Op => ({ op: OP.PIVOT_ROOT, s: [root], desc: `pivot_root to ${root}` });
export const sethostname = (name: string): Op => ({ op: OP.SETHOSTNAME, s: [name], desc: `sethostname ${name}` });
export const loopbackUp = (): Op => ({ op: OP.LOOPBACK_UP, desc: 'bring up lo' });
export const dup2 = (from: number, to: number): Op => ({ op: OP.DUP2, n: [from, to], desc: `dup2 ${from} to ${to}` });

/**
 * The child's 0, 1, 2 from the given fds. When a source is itself one of 0-2 that an earlier dup2
 * would overwrite, every source is first moved above them all (close_range closes those at exec).
 */
export function stdioOps(fds: readonly number[]): Op[] {
  const clash = fds.some((fd, i) => fd < fds.length && fd !== i);
  if (!clash) return fds.map((fd, i) => dup2(fd, i));
  const base = Math.max(...fds, fds.length - 1) + 1;
  return [...fds.map((fd, i) => dup2(fd, base + i)), ...fds.map((_, i) => dup2(base + i, i))];
}
export const chdir = (path: string): Op => ({ op: OP.CHDIR, s: [path], desc: `chdir to ${path}` });
export const setrlimit = (resource: number, soft: number, hard: number, name: string): Op =>
  ({ op: OP.SETRLIMIT, n: [resource, soft, hard], desc: `setrlimit ${name}` });
export const symlink = (target: string, path: string): Op =>
  ({ op: OP.SYMLINK, s: [target, path], desc: `symlink ${path} -> ${target}` });
export const createFile = (path: string, mode = 0o644): Op =>
  ({ op: OP.CREATE_FILE, s: [path], n: [mode], desc: `create ${path}` });
export const setattr = (path: string, set: number, clear: number, recursive: boolean, desc: string): Op =>
  ({ op: OP.SETATTR, s: [path], n: [set, clear, recursive ? 1 : 0], desc });
export const waitSync = (): Op => ({ op: OP.WAIT_SYNC, desc: 'wait for the parent' });
export const setsid = (): Op => ({ op: OP.SETSID, desc: 'setsid' });
export const setns = (fd: number, nstype: number, what: string): Op =>
  ({ op: OP.SETNS, n: [fd, nstype], desc: `join ${what} namespace` });
export const unshare = (flags: number, what: string): Op => ({ op: OP.UNSHARE, n: [flags], desc: `unshare ${what}` });
export const prctl = (option: number, args: number[], desc: string): Op => ({ op: OP.PRCTL, n: [option, ...args], desc });
export const closeFds = (from = 3): Op => ({ op: OP.CLOSE_FDS, n: [from], desc: 'mark inherited fds close-on-exec' });
export const openTree = (path: string, slot: number, recursive = false): Op =>
  ({ op: OP.OPEN_TREE, s: [path], n: [slot, recursive ? 1 : 0], desc: `open ${path} for a bind mount` });
export const moveMount = (slot: number, target: string, source: string): Op =>
  ({ op: OP.MOVE_MOUNT, s: [target], n: [slot], desc: `bind ${source} on ${target}` });
export const init = (): Op => ({ op: OP.INIT, desc: 'start init' });
export const setTty = (fd: number): Op => ({ op: OP.SET_TTY, n: [fd], desc: 'make the terminal the controlling terminal' });
export const close = (fds: number[], what: string): Op => ({ op: OP.CLOSE, n: fds, desc: `close ${what}` });
/** Close every fd above 2 except `keep` (and the plan's own pipes). */
export const closeOthers = (keep: number[]): Op => ({ op: OP.CLOSE, n: [-1, ...keep], desc: 'close inherited fds' });
export const umask = (mask: number): Op => ({ op: OP.UMASK, n: [mask], desc: 'umask' });

/** execve of the first candidate path that exists; ENOENT when none does. */
export const exec = (command: string, argv: string[], env: string[], candidates: string[]): Op =>
  ({ op: OP.EXEC, n: [argv.length, env.length], s: [...argv, ...env, ...candidates], desc: `exec ${command}`, command });

// Identity (src/userns): groups, ids, capability sets as [lo, hi] 32-bit halves of each mask.
export const setgroups = (gids: number[]): Op =>
  ({ op: OP.SETGROUPS, n: [...gids], desc: gids.length ? `setgroups ${gids.join(',')}` : 'drop supplementary groups' });
export const setresgid = (gid: number): Op => ({ op: OP.SETRESGID, n: [gid], desc: `setresgid ${gid}` });
export const setresuid = (uid: number): Op => ({ op: OP.SETRESUID, n: [uid], desc: `setresuid ${uid}` });
export const caps = (bounding: bigint, effective: bigint, permitted: bigint, inheritable: bigint, ambient: bigint): Op => ({
  op: OP.CAPS,
  n: [bounding, effective, permitted, inheritable, ambient].flatMap((m) => [Number(m & 0xffffffffn), Number(m >> 32n)]),
  desc: 'set capabilities',
});

/** Right after the maps are written: drop the host's groups, become gid 0 and uid 0 of the namespace. */
export const usernsRoot = (dropGroups: boolean, gid0: boolean, uid0: boolean): Op =>
  ({ op: OP.USERNS_ROOT, n: [dropGroups ? 1 : 0, gid0 ? 1 : 0, uid0 ? 1 : 0], desc: 'become root of the user namespace' });

/** `primary`, or when it fails, `fallback` in its place (the child skips the fallback when primary works). */
export const orElse = (primary: Op, fallback: Op[]): Op[] => [{ ...primary, alt: fallback.length }, ...fallback];

// Mounts inside the root (native/paths.c): a target is opened with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS) into a slot and mounts attach to that fd, so no symlink can redirect them.
export const OPEN_AT = { MUST_EXIST: 0, DIR: 1, FILE: 2, OPTIONAL: 4, NOSYMLINKS: 8, NOT_KERNFS: 16, XDEV: 32 } as const;
export const openAt = (path: string, slot: number, how: number, desc?: string): Op =>
  ({ op: OP.OPEN_AT, s: [path], n: [slot, how], desc: desc ?? `open ${path} in the root` });
export const moveMountTo = (from: number, to: number, desc: string): Op => ({ op: OP.MOVE_MOUNT_TO, n: [from, to], desc });
export const fsmount = (fstype: string, options: string[], slot: number, attrs: number, desc: string): Op =>
  ({ op: OP.FSMOUNT, s: [fstype, ...options], n: [slot, attrs], desc });
export const cloneTree = (from: number, to: number, recursive: boolean, desc: string): Op =>
  ({ op: OP.CLONE_TREE, n: [from, to, recursive ? 1 : 0], desc });
export const setattrSlot = (slot: number, set: number, clear: number, recursive: boolean, desc: string): Op =>
  ({ op: OP.SETATTR_SLOT, n: [slot, set, clear, recursive ? 1 : 0], desc });

// Paths relative to a mount the plan holds in a slot (native/paths.c): resolved beneath it with no
// symlink, magic link or mount crossing, so nothing in the rootfs, nor a rename in it while the
// container starts, can move them.

/** The working directory: opened inside the root without magic links, entered with fchdir, checked. */
export const chdirInRoot = (path: string, make = false): Op => ({
  op: OP.CHDIR_IN_ROOT, s: [path], n: [make ? 1 : 0], desc: `chdir to ${path}`,
  why: { ELOOP: 'it goes through a /proc magic link or too many symlinks', EXDEV: 'it is outside the root' },
});
export const openBeneath = (dir: number, path: string, to: number, how: number, desc: string): Op =>
  ({ op: OP.OPEN_BENEATH, s: [path], n: [dir, to, how], desc, why: { ELOOP: 'it is a symlink', EXDEV: 'another mount is in the way' } });
/** Attach the mount in slot `from` onto the target in slot `to`; `from` stays open, on the attached mount. */
export const attach = (from: number, to: number, desc: string): Op => ({ op: OP.ATTACH, n: [from, to], desc });
export const mknodAt = (dir: number, name: string, mode: number, major: number, minor: number, desc: string, uid = -1, gid = -1): Op =>
  ({ op: OP.MKNOD_AT, s: [name], n: [dir, mode, major, minor, uid, gid], desc });
export const symlinkAt = (dir: number, target: string, name: string, desc: string): Op =>
  ({ op: OP.SYMLINK_AT, s: [target, name], n: [dir], desc });
/** Mask `path` of the tree in slot `tree` (skipped only when that tree has no such path). */
export const maskAt = (tree: number, dev: number, path: string, desc: string): Op =>
  ({ op: OP.MASK_AT, s: [path], n: [tree, dev], desc, why: { ELOOP: 'it is a symlink', ENODEV: "the container's /dev/null is not the null device" } });
/** Close the mounts held in these slots once nothing more is done inside them. */
export const closeSlots = (slots: number[], what: string): Op => ({ op: OP.CLOSE_SLOTS, n: slots, desc: `close ${what}` });
