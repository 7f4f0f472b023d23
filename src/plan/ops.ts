// Builders for the plan the child runs between clone() and execve() (see native/plan.h).
// Each op carries a description so a failing step can be named in words.
import type { PlanOp } from '../native.js';

export const OP = {
  MOUNT: 0, MKDIR: 1, PIVOT_ROOT: 2, UMOUNT: 3, SETHOSTNAME: 4, LOOPBACK_UP: 5, DUP2: 6, CHDIR: 7,
  SETRLIMIT: 8, EXEC: 9, SYMLINK: 10, CREATE_FILE: 11, SETATTR: 12, WAIT_SYNC: 13, SETSID: 14, SETNS: 15,
  UNSHARE: 16, PRCTL: 17, SETGROUPS: 18, SETRESGID: 19, SETRESUID: 20, CAPS: 21, SECCOMP: 22, CLOSE_FDS: 23,
  OPEN_TREE: 24, MOVE_MOUNT: 25, INIT: 26, UMASK: 27, WRITE_FILE: 28, SET_TTY: 29, CLOSE: 30,
} as const;

export interface Op extends PlanOp {
  desc: string;
  /** For exec: the command as the user typed it. */
  command?: string;
}

export const mount = (src: string, target: string, fstype: string, flags: number, data = '', desc?: string): Op =>
  ({ op: OP.MOUNT, s: [src, target, fstype, data], n: [flags], desc: desc ?? `mount ${fstype || src} on ${target}` });
export const mkdir = (path: string, mode = 0o755): Op => ({ op: OP.MKDIR, s: [path], n: [mode], desc: `mkdir ${path}` });
export const pivotRoot = (root: string): Op => ({ op: OP.PIVOT_ROOT, s: [root], desc: `pivot_root to ${root}` });
export const sethostname = (name: string): Op => ({ op: OP.SETHOSTNAME, s: [name], desc: `sethostname ${name}` });
export const loopbackUp = (): Op => ({ op: OP.LOOPBACK_UP, desc: 'bring up lo' });
export const dup2 = (from: number, to: number): Op => ({ op: OP.DUP2, n: [from, to], desc: `dup2 ${from} to ${to}` });
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
export const umask = (mask: number): Op => ({ op: OP.UMASK, n: [mask], desc: 'umask' });

/** execve of the first candidate path that exists; ENOENT when none does. */
export const exec = (command: string, argv: string[], env: string[], candidates: string[]): Op =>
  ({ op: OP.EXEC, n: [argv.length, env.length], s: [...argv, ...env, ...candidates], desc: `exec ${command}`, command });
