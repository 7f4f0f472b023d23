// Builders for the steps of a plan (src/plan/steps.ts): each returns a typed step named in words, so a
// failing step can be reported as `nsbox: <desc>: <errno>`.
import type { Slot, Step, StepBody } from './steps.js';

export type { Step as Op } from './steps.js';

// The body is a fresh literal at every call: add the words to it rather than copy it (a start builds ~100).
const step = <B extends StepBody>(body: B, desc: string): B & { desc: string } => Object.assign(body, { desc });

export const mount = (source: string, target: string, fstype: string, flags: number, data = '', desc?: string): Step =>
  step({ kind: 'mount', source, target, fstype, flags, data }, desc ?? `mount ${fstype || source} on ${target}`);
export const mkdir = (path: string, mode = 0o755): Step => step({ kind: 'mkdir', path, mode }, `mkdir ${path}`);
export const pivotRoot = (root: string): Step => step({ kind: 'pivotRoot', root }, `pivot_root to ${root}`);
export const sethostname = (name: string): Step => step({ kind: 'sethostname', name }, `sethostname ${name}`);
export const loopbackUp = (): Step => step({ kind: 'loopbackUp' }, 'bring up lo');
export const dup2 = (from: number, to: number): Step => step({ kind: 'dup2', from, to }, `dup2 ${from} to ${to}`);

/**
 * The child's 0, 1, 2 from the given fds. When a source is itself one of 0-2 that an earlier dup2
 * would overwrite, every source is first moved above them all (closed with the inherited fds).
 */
export function stdioOps(fds: readonly number[]): Step[] {
  const clash = fds.some((fd, i) => fd < fds.length && fd !== i);
  if (!clash) return fds.map((fd, i) => dup2(fd, i));
  const base = Math.max(...fds, fds.length - 1) + 1;
  return [...fds.map((fd, i) => dup2(fd, base + i)), ...fds.map((_, i) => dup2(base + i, i))];
}
export const chdir = (path: string): Step => step({ kind: 'chdir', path }, `chdir to ${path}`);
export const setrlimit = (resource: number, soft: number, hard: number, name: string): Step =>
  step({ kind: 'setrlimit', resource, soft, hard, name }, `setrlimit ${name}`);
export const symlink = (target: string, path: string): Step =>
  step({ kind: 'symlink', target, path }, `symlink ${path} -> ${target}`);
export const createFile = (path: string, mode = 0o644): Step =>
  step({ kind: 'createFile', path, mode }, `create ${path}`);
export const setattr = (path: string, set: number, clear: number, recursive: boolean, desc: string): Step =>
  step({ kind: 'setattr', path, set, clear, recursive }, desc);
export const waitSync = (): Step => step({ kind: 'waitSync' }, 'wait for the parent');
export const setsid = (): Step => step({ kind: 'setsid' }, 'setsid');
export const setns = (fd: number, nstype: number, what: string): Step =>
  step({ kind: 'setns', fd, nstype, what }, `join ${what} namespace`);
export const unshare = (flags: number, what: string): Step => step({ kind: 'unshare', flags, what }, `unshare ${what}`);
export const prctl = (option: number, args: number[], desc: string): Step =>
  step({ kind: 'prctl', option, args }, desc);
/** Mark every fd from `from` up close-on-exec (the last step before exec). */
export const closeFds = (from = 3): Step => step({ kind: 'cloexecFrom', from }, 'mark inherited fds close-on-exec');
export const openTree = (path: string, slot: Slot, recursive = false): Step =>
  step({ kind: 'openTree', path, slot, recursive }, `open ${path} for a bind mount`);
export const moveMount = (slot: Slot, target: string, source: string): Step =>
  step({ kind: 'moveMount', slot, target }, `bind ${source} on ${target}`);
export const init = (): Step => step({ kind: 'init' }, 'start init');
export const setTty = (fd: number): Step => step({ kind: 'setTty', fd }, 'make the terminal the controlling terminal');
export const close = (fds: number[], what: string): Step => step({ kind: 'close', fds }, `close ${what}`);
/** Close every fd above 2 except `keep` (and the plan's own pipes). */
export const closeOthers = (keep: number[]): Step => step({ kind: 'closeInherited', keep }, 'close inherited fds');
export const umask = (mask: number): Step => step({ kind: 'umask', mask }, 'umask');
export const writeFile = (path: string, data: string, desc: string): Step =>
  step({ kind: 'writeFile', path, data }, desc);

/** execve of the first candidate path that exists; ENOENT when none does. */
export const exec = (command: string, argv: string[], env: string[], candidates: string[]): Step =>
  step({ kind: 'exec', command, argv, env, candidates }, `exec ${command}`);

// Identity (src/userns): groups, ids, capability sets.
export const setgroups = (gids: number[]): Step =>
  step(
    { kind: 'setgroups', gids: [...gids] },
    gids.length ? `setgroups ${gids.join(',')}` : 'drop supplementary groups',
  );
export const setresgid = (gid: number): Step => step({ kind: 'setresgid', gid }, `setresgid ${gid}`);
export const setresuid = (uid: number): Step => step({ kind: 'setresuid', uid }, `setresuid ${uid}`);
export const caps = (
  bounding: bigint,
  effective: bigint,
  permitted: bigint,
  inheritable: bigint,
  ambient: bigint,
): Step => step({ kind: 'caps', bounding, effective, permitted, inheritable, ambient }, 'set capabilities');
export const seccomp = (filter: Buffer, flags: number, source: string): Step =>
  step({ kind: 'seccomp', filter, flags, source }, `install the seccomp filter (${source})`);

/** Right after the maps are written: drop the host's groups, become gid 0 and uid 0 of the namespace. */
export const usernsRoot = (dropGroups: boolean, gid0: boolean, uid0: boolean): Step =>
  step({ kind: 'usernsRoot', dropGroups, gid0, uid0 }, 'become root of the user namespace');

/** Held before exec: the FIFO opened on the host, then a wait for `start` (src/plan/hold.ts). */
export const holdOpen = (path: string, slot: Slot): Step =>
  step({ kind: 'holdOpen', path, slot }, `open the hold FIFO ${path}`);
export const hold = (slot: Slot, command = 0): Step =>
  step({ kind: 'hold', slot, command }, command ? 'wait for the command' : 'wait to be started');
/** After a hold with a command: its working directory, then its exec. */
export const heldChdir = (): Step => step({ kind: 'heldChdir' }, 'chdir to the working directory given');
export const heldExec = (): Step => step({ kind: 'heldExec' }, 'exec the command given');
/** An inherited fd (kept open by PlanBuilder.keepOpen) taken into a slot. */
export const takeFd = (fd: number, slot: Slot, what: string): Step =>
  step({ kind: 'takeFd', fd, slot }, `take ${what}`);
export const personality = (persona: number, name: string): Step =>
  step({ kind: 'personality', persona }, `set the personality ${name}`);
export const keepOnExec = (fds: number[]): Step =>
  step({ kind: 'keepOnExec', fds }, `keep fds ${fds.join(', ')} open across exec`);

/** `primary`, or when it fails, `fallback` in its place (the child skips the fallback when primary works). */
export const orElse = (primary: Step, fallback: Step[]): Step => ({ ...primary, orElse: fallback });

// Mounts inside the root (native/paths.c): a target is opened with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS) into a slot and mounts attach to that fd, so no symlink can redirect them.
export const OPEN_AT = {
  MUST_EXIST: 0,
  DIR: 1,
  FILE: 2,
  OPTIONAL: 4,
  NOSYMLINKS: 8,
  NOT_KERNFS: 16,
  XDEV: 32,
} as const;
export const openAt = (path: string, slot: Slot, how: number, desc?: string): Step =>
  step({ kind: 'openAt', path, slot, how }, desc ?? `open ${path} in the root`);
export const moveMountTo = (from: Slot, to: Slot, desc: string): Step => step({ kind: 'attach', from, to }, desc);
export const fsmount = (fstype: string, options: string[], slot: Slot, attrs: number, desc: string): Step =>
  step({ kind: 'fsmount', fstype, options, slot, attrs }, desc);
export const cloneTree = (from: Slot, to: Slot, recursive: boolean, desc: string): Step =>
  step({ kind: 'cloneTree', from, to, recursive }, desc);
export const setattrSlot = (
  slot: Slot,
  set: number,
  clear: number,
  recursive: boolean,
  desc: string,
  propagation?: number,
): Step => step({ kind: 'setattrSlot', slot, set, clear, recursive, ...(propagation ? { propagation } : {}) }, desc);

// Paths relative to a mount the plan holds in a slot (native/paths.c): resolved beneath it with no
// symlink, magic link or mount crossing, so nothing in the rootfs, nor a rename in it while the
// container starts, can move them.

/** The working directory: opened inside the root without magic links, entered with fchdir, checked. */
const CHDIR_WHY = { ELOOP: 'it goes through a /proc magic link or too many symlinks', EXDEV: 'it is outside the root' };
const BENEATH_WHY = { ELOOP: 'it is a symlink', EXDEV: 'another mount is in the way' };
const MASK_WHY = { ELOOP: 'it is a symlink', ENODEV: "the container's /dev/null is not the null device" };

export const chdirInRoot = (path: string, make = false): Step =>
  Object.assign(step({ kind: 'chdirInRoot', path, make }, `chdir to ${path}`), { why: CHDIR_WHY });
export const openBeneath = (dir: Slot, path: string, to: Slot, how: number, desc: string): Step =>
  Object.assign(step({ kind: 'openBeneath', dir, path, to, how }, desc), { why: BENEATH_WHY });
/** Attach the mount in slot `from` onto the target in slot `to`; `from` stays open, on the attached mount. */
export const attach = (from: Slot, to: Slot, desc: string): Step => step({ kind: 'attachHeld', from, to }, desc);
export const mknodAt = (
  dir: Slot,
  name: string,
  mode: number,
  major: number,
  minor: number,
  desc: string,
  uid = -1,
  gid = -1,
): Step => step({ kind: 'mknodAt', dir, name, mode, major, minor, uid, gid }, desc);
export const symlinkAt = (dir: Slot, target: string, name: string, desc: string): Step =>
  step({ kind: 'symlinkAt', dir, target, name }, desc);
/** Mask `path` of the tree in slot `tree` (skipped only when that tree has no such path). */
export const maskAt = (tree: Slot, dev: Slot, path: string, desc: string): Step =>
  Object.assign(step({ kind: 'maskAt', tree, dev, path }, desc), { why: MASK_WHY });
/** Close the mounts held in these slots once nothing more is done inside them. */
export const closeSlots = (slots: Slot[], what: string): Step => step({ kind: 'closeSlots', slots }, `close ${what}`);
