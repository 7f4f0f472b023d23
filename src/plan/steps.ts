// The steps of a plan, typed: what the child does between clone() and execve(), one syscall-sized
// step each. Built by src/plan/ops.ts, ordered by src/plan/builder.ts, turned into the addon's wire
// form only by src/plan/encode.ts.

/** Slots hold the plan's own descriptors (detached mounts, opened targets); see PlanBuilder.slot(). */
export type Slot = number;

export type StepBody =
  | { kind: 'mount'; source: string; target: string; fstype: string; flags: number; data: string }
  | { kind: 'mkdir'; path: string; mode: number }
  | { kind: 'pivotRoot'; root: string }
  | { kind: 'umount'; path: string; flags: number }
  | { kind: 'sethostname'; name: string }
  | { kind: 'loopbackUp' }
  | { kind: 'dup2'; from: number; to: number }
  | { kind: 'chdir'; path: string }
  | { kind: 'setrlimit'; resource: number; soft: number; hard: number; name: string }
  | { kind: 'exec'; command: string; argv: string[]; env: string[]; candidates: string[] }
  | { kind: 'symlink'; target: string; path: string }
  | { kind: 'createFile'; path: string; mode: number }
  | { kind: 'setattr'; path: string; set: number; clear: number; recursive: boolean }
  | { kind: 'waitSync' }
  | { kind: 'setsid' }
  | { kind: 'setns'; fd: number; nstype: number; what: string }
  | { kind: 'unshare'; flags: number; what: string }
  | { kind: 'prctl'; option: number; args: number[] }
  | { kind: 'setgroups'; gids: number[] }
  | { kind: 'setresgid'; gid: number }
  | { kind: 'setresuid'; uid: number }
  | { kind: 'caps'; bounding: bigint; effective: bigint; permitted: bigint; inheritable: bigint; ambient: bigint }
  | { kind: 'seccomp'; filter: Buffer; flags: number; source: string }
  /** Mark every fd from `from` up close-on-exec. */
  | { kind: 'cloexecFrom'; from: number }
  | { kind: 'openTree'; path: string; slot: Slot; recursive: boolean }
  /** Attach the detached mount in `slot` on a path (resolved as a plain path). */
  | { kind: 'moveMount'; slot: Slot; target: string }
  | { kind: 'init' }
  | { kind: 'umask'; mask: number }
  | { kind: 'writeFile'; path: string; data: string }
  | { kind: 'setTty'; fd: number }
  | { kind: 'close'; fds: number[] }
  /** Close every fd above 2 but `keep` and the plan's own pipes. */
  | { kind: 'closeInherited'; keep: number[] }
  /** An O_PATH fd of a path inside the root (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS). */
  | { kind: 'openAt'; path: string; slot: Slot; how: number }
  /** Attach the mount in slot `from` onto the file in slot `to`; both are closed. */
  | { kind: 'attach'; from: Slot; to: Slot }
  | { kind: 'fsmount'; fstype: string; options: string[]; slot: Slot; attrs: number }
  | { kind: 'cloneTree'; from: Slot; to: Slot; recursive: boolean }
  | { kind: 'setattrSlot'; slot: Slot; set: number; clear: number; recursive: boolean; propagation?: number }
  | { kind: 'usernsRoot'; dropGroups: boolean; gid0: boolean; uid0: boolean }
  // Paths relative to a mount the plan holds in a slot (native/paths.c): resolved beneath it with no
  // symlink, magic link or mount crossing, so nothing in the rootfs, nor a rename in it, can move them.
  /** The working directory: opened in the root without magic links, entered with fchdir, checked. */
  | { kind: 'chdirInRoot'; path: string; make: boolean }
  | { kind: 'openBeneath'; dir: Slot; path: string; to: Slot; how: number }
  /** Attach the mount in `from` onto the target in `to`; `from` stays open, on the attached mount. */
  | { kind: 'attachHeld'; from: Slot; to: Slot }
  | { kind: 'mknodAt'; dir: Slot; name: string; mode: number; major: number; minor: number; uid: number; gid: number }
  | { kind: 'symlinkAt'; dir: Slot; target: string; name: string }
  /** Mask `path` of the tree in `tree` (skipped only when that tree has no such path). */
  | { kind: 'maskAt'; tree: Slot; dev: Slot; path: string }
  /** Close the mounts held in these slots once nothing more is done inside them. */
  | { kind: 'closeSlots'; slots: Slot[] }
  /** Open the hold FIFO (a host path) read-write into a slot. */
  | { kind: 'holdOpen'; path: string; slot: Slot }
  /** Report "held" to the parent, then wait for a byte on the FIFO in `slot`, or with `command` (the bytes of
   *  a buffer for it) keep reporting and read the command to run (a sandbox pool's; src/plan/hold.ts). */
  | { kind: 'hold'; slot: Slot; command: number }
  /** The working directory given with the held command (as chdirInRoot; none given: stay). */
  | { kind: 'heldChdir' }
  /** execve of the held command (as exec). */
  | { kind: 'heldExec' }
  /** An inherited fd, kept open through the closing of the others, becomes a slot's (an idmapped mount). */
  | { kind: 'takeFd'; fd: number; slot: Slot }
  /** Inherited fds the command keeps (clears close-on-exec after cloexecFrom set it). */
  | { kind: 'keepOnExec'; fds: number[] }
  /** personality(2): the execution domain the command runs in (PER_LINUX32: uname says i686). */
  | { kind: 'personality'; persona: number };

export type StepKind = StepBody['kind'];

/** A step with the words that name it in an error (`nsbox: mount proc on /proc: ...`). */
export type Step = StepBody & {
  desc: string;
  /** What an errno means for this step, said instead of the errno's text (e.g. ELOOP: 'is a symlink'). */
  why?: Record<string, string>;
  /** Run instead when this step fails (skipped when it works). */
  orElse?: Step[];
};

export type StepOf<K extends StepKind> = Extract<Step, { kind: K }>;

export const isStep = <K extends StepKind>(s: Step, kind: K): s is StepOf<K> => s.kind === kind;

/** Steps that resolve a path: none may run while an inherited descriptor is open. */
export const RESOLVES_PATH: ReadonlySet<StepKind> = new Set<StepKind>([
  'mount',
  'mkdir',
  'pivotRoot',
  'umount',
  'chdir',
  'exec',
  'symlink',
  'createFile',
  'setattr',
  'openTree',
  'moveMount',
  'writeFile',
  'openAt',
  'chdirInRoot',
  'openBeneath',
  'mknodAt',
  'symlinkAt',
  'maskAt',
  'holdOpen',
  'heldChdir',
  'heldExec',
]);

/** Steps that open one of the plan's slots: the inherited fds must be closed before (they would be kept). */
export const OPENS_SLOT: ReadonlySet<StepKind> = new Set<StepKind>([
  'openTree',
  'openAt',
  'fsmount',
  'cloneTree',
  'openBeneath',
  'holdOpen',
]);

/** Steps that change who the process is. */
export const IDENTITY: ReadonlySet<StepKind> = new Set<StepKind>(['setgroups', 'setresgid', 'setresuid', 'caps']);
