// The one place that knows the addon's wire form of a plan (native/plan.h): op codes and the order of
// each op's strings (s) and numbers (n). test/plan/encode.test.ts checks the codes against plan.h.
import type { PlanOp } from '../native.js';
import type { Step } from './steps.js';

export const OP = {
  MOUNT: 0,
  MKDIR: 1,
  PIVOT_ROOT: 2,
  UMOUNT: 3,
  SETHOSTNAME: 4,
  LOOPBACK_UP: 5,
  DUP2: 6,
  CHDIR: 7,
  SETRLIMIT: 8,
  EXEC: 9,
  SYMLINK: 10,
  CREATE_FILE: 11,
  SETATTR: 12,
  WAIT_SYNC: 13,
  SETSID: 14,
  SETNS: 15,
  UNSHARE: 16,
  PRCTL: 17,
  SETGROUPS: 18,
  SETRESGID: 19,
  SETRESUID: 20,
  CAPS: 21,
  SECCOMP: 22,
  CLOSE_FDS: 23,
  OPEN_TREE: 24,
  MOVE_MOUNT: 25,
  INIT: 26,
  UMASK: 27,
  WRITE_FILE: 28,
  SET_TTY: 29,
  CLOSE: 30,
  OPEN_AT: 31,
  MOVE_MOUNT_TO: 32,
  FSMOUNT: 33,
  CLONE_TREE: 34,
  SETATTR_SLOT: 35,
  USERNS_ROOT: 36,
  CHDIR_IN_ROOT: 37,
  OPEN_BENEATH: 38,
  ATTACH: 39,
  MKNOD_AT: 40,
  SYMLINK_AT: 41,
  MASK_AT: 42,
  CLOSE_SLOTS: 43,
  HOLD_OPEN: 44,
  HOLD: 45,
  HELD_CHDIR: 46,
  HELD_EXEC: 47,
  TAKE_FD: 54,
  KEEP_ON_EXEC: 50,
  PERSONALITY: 51,
} as const;

/** Slots of the plan's descriptor table (PLAN_SLOTS in native/plan.h). */
export const PLAN_SLOTS = 1024;

const halves = (m: bigint) => [Number(m & 0xffffffffn), Number(m >> 32n)];
const bit = (b: boolean) => (b ? 1 : 0);

function encodeOne(s: Step): PlanOp {
  switch (s.kind) {
    case 'mount':
      return { op: OP.MOUNT, s: [s.source, s.target, s.fstype, s.data], n: [s.flags] };
    case 'mkdir':
      return { op: OP.MKDIR, s: [s.path], n: [s.mode] };
    case 'pivotRoot':
      return { op: OP.PIVOT_ROOT, s: [s.root] };
    case 'umount':
      return { op: OP.UMOUNT, s: [s.path], n: [s.flags] };
    case 'sethostname':
      return { op: OP.SETHOSTNAME, s: [s.name] };
    case 'loopbackUp':
      return { op: OP.LOOPBACK_UP };
    case 'dup2':
      return { op: OP.DUP2, n: [s.from, s.to] };
    case 'chdir':
      return { op: OP.CHDIR, s: [s.path] };
    case 'setrlimit':
      return { op: OP.SETRLIMIT, n: [s.resource, s.soft, s.hard] };
    case 'exec':
      return { op: OP.EXEC, n: [s.argv.length, s.env.length], s: [...s.argv, ...s.env, ...s.candidates] };
    case 'symlink':
      return { op: OP.SYMLINK, s: [s.target, s.path] };
    case 'createFile':
      return { op: OP.CREATE_FILE, s: [s.path], n: [s.mode] };
    case 'setattr':
      return { op: OP.SETATTR, s: [s.path], n: [s.set, s.clear, bit(s.recursive)] };
    case 'waitSync':
      return { op: OP.WAIT_SYNC };
    case 'setsid':
      return { op: OP.SETSID };
    case 'setns':
      return { op: OP.SETNS, n: [s.fd, s.nstype] };
    case 'unshare':
      return { op: OP.UNSHARE, n: [s.flags] };
    case 'prctl':
      return { op: OP.PRCTL, n: [s.option, ...s.args] };
    case 'setgroups':
      return { op: OP.SETGROUPS, n: [...s.gids] };
    case 'setresgid':
      return { op: OP.SETRESGID, n: [s.gid] };
    case 'setresuid':
      return { op: OP.SETRESUID, n: [s.uid] };
    case 'caps':
      return { op: OP.CAPS, n: [s.bounding, s.effective, s.permitted, s.inheritable, s.ambient].flatMap(halves) };
    case 'seccomp':
      return { op: OP.SECCOMP, b: s.filter, n: [s.flags] };
    case 'cloexecFrom':
      return { op: OP.CLOSE_FDS, n: [s.from] };
    case 'openTree':
      return { op: OP.OPEN_TREE, s: [s.path], n: [s.slot, bit(s.recursive)] };
    case 'moveMount':
      return { op: OP.MOVE_MOUNT, s: [s.target], n: [s.slot] };
    case 'init':
      return { op: OP.INIT };
    case 'umask':
      return { op: OP.UMASK, n: [s.mask] };
    case 'writeFile':
      return { op: OP.WRITE_FILE, s: [s.path, s.data] };
    case 'setTty':
      return { op: OP.SET_TTY, n: [s.fd] };
    case 'close':
      return { op: OP.CLOSE, n: [...s.fds] };
    case 'closeInherited':
      return { op: OP.CLOSE, n: [-1, ...s.keep] };
    case 'openAt':
      return { op: OP.OPEN_AT, s: [s.path], n: [s.slot, s.how] };
    case 'attach':
      return { op: OP.MOVE_MOUNT_TO, n: [s.from, s.to] };
    case 'fsmount':
      return { op: OP.FSMOUNT, s: [s.fstype, ...s.options], n: [s.slot, s.attrs] };
    case 'cloneTree':
      return { op: OP.CLONE_TREE, n: [s.from, s.to, bit(s.recursive)] };
    case 'setattrSlot':
      return {
        op: OP.SETATTR_SLOT,
        n: [s.slot, s.set, s.clear, bit(s.recursive), ...(s.propagation ? [s.propagation] : [])],
      };
    case 'usernsRoot':
      return { op: OP.USERNS_ROOT, n: [bit(s.dropGroups), bit(s.gid0), bit(s.uid0)] };
    case 'chdirInRoot':
      return { op: OP.CHDIR_IN_ROOT, s: [s.path], n: [bit(s.make)] };
    case 'openBeneath':
      return { op: OP.OPEN_BENEATH, s: [s.path], n: [s.dir, s.to, s.how] };
    case 'attachHeld':
      return { op: OP.ATTACH, n: [s.from, s.to] };
    case 'mknodAt':
      return { op: OP.MKNOD_AT, s: [s.name], n: [s.dir, s.mode, s.major, s.minor, s.uid, s.gid] };
    case 'symlinkAt':
      return { op: OP.SYMLINK_AT, s: [s.target, s.name], n: [s.dir] };
    case 'maskAt':
      return { op: OP.MASK_AT, s: [s.path], n: [s.tree, s.dev] };
    case 'closeSlots':
      return { op: OP.CLOSE_SLOTS, n: [...s.slots] };
    case 'holdOpen':
      return { op: OP.HOLD_OPEN, s: [s.path], n: [s.slot] };
    case 'hold':
      return { op: OP.HOLD, n: s.command ? [s.slot, s.command] : [s.slot] };
    case 'heldChdir':
      return { op: OP.HELD_CHDIR };
    case 'heldExec':
      return { op: OP.HELD_EXEC };
    case 'takeFd':
      return { op: OP.TAKE_FD, n: [s.fd, s.slot] };
    case 'personality':
      return { op: OP.PERSONALITY, n: [s.persona] };
    case 'keepOnExec':
      return { op: OP.KEEP_ON_EXEC, n: [...s.fds] };
  }
}

/** A plan as the addon takes it; `steps[i]` is the step behind `ops[i]` (fallbacks flattened in place). */
export interface Encoded {
  ops: PlanOp[];
  steps: Step[];
}

export function encode(plan: readonly Step[]): Encoded {
  const ops: PlanOp[] = [],
    steps: Step[] = [];
  const add = (s: Step) => {
    const fallback = s.orElse ?? [];
    ops.push({ ...encodeOne(s), ...(fallback.length ? { alt: fallback.length } : {}) });
    steps.push(s);
    for (const f of fallback) {
      if (f.orElse?.length) throw new Error(`plan: a fallback cannot have a fallback (${f.desc})`);
      add(f);
    }
  };
  for (const s of plan) add(s);
  return { ops, steps };
}
