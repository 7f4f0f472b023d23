// Start a process inside a running container, nsenter-style. The child of clone3() is the
// process that straddles host and container: it makes itself non-dumpable before anything
// else, closes every fd it inherited, joins the target's namespaces through its pidfd in one
// setns() (the kernel enters the user namespace first, so the rest are permitted), and, since
// joining a PID namespace only applies to children, forks once more (OP_INIT): the reaper
// stays outside and forwards signals, the second child is a member and execs the command.
import { readlinkSync } from 'node:fs';
import { fstatSync } from 'node:fs';
import { signalName } from '../signals.js';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import { CLONE } from '../native.js';
import * as op from '../plan/ops.js';
import { spawnPlan, whenExecuted } from '../plan/child.js';
import { PlanBuilder, type Phase } from '../plan/builder.js';
import { encode } from '../plan/encode.js';
import type { Step } from '../plan/steps.js';
import { commandCandidates } from '../spec.js';
import { nsId, type NsName } from '../state/proc.js';
import { joinCgroupsOf } from './cgroup.js';
import { checkFilterLetsPlanRun } from '../seccomp/needs.js';

const PR_SET_DUMPABLE = 4;
const CLONE_NEWTIME = 0x80;

export const NS_FLAGS: Record<NsName, number> = {
  user: CLONE.NEWUSER,
  mnt: CLONE.NEWNS,
  uts: CLONE.NEWUTS,
  ipc: CLONE.NEWIPC,
  net: CLONE.NEWNET,
  pid: CLONE.NEWPID,
  cgroup: CLONE.NEWCGROUP,
  time: CLONE_NEWTIME,
};

export interface ExecSpec {
  /** The target process (pinned by its pidfd) whose namespaces and cgroups are joined. */
  pid: number;
  pidfd: number;
  /** Namespaces to join; those the target shares with us are skipped. */
  namespaces: NsName[];
  /** Join the target's cgroups too. */
  cgroup: boolean;
  command: string[];
  env: string[];
  cwd?: string;
  /** Credential steps (user, groups, capabilities, no_new_privs, seccomp), each with its phase. */
  creds: { phase: Phase; step: Step }[];
  /** The command's 0, 1, 2 (host fds, dup'ed into place before joining). */
  stdio: [number, number, number];
  /** stdio is a terminal: make it the controlling terminal. */
  tty: boolean;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  status: number;
  /** CPU time of the exec'd process and what it reaped, from the reaper's wait status. */
  userUs: number;
  systemUs: number;
  maxRssKb: number;
}

/**
 * The namespaces of `names` in which pid differs from us. A namespace we cannot see (no permission
 * to read /proc/PID/ns/NS, or the process is gone) is an error, never skipped: joining fewer
 * namespaces than asked would run the command in ours (fail closed). Only one the kernel lacks
 * altogether (for us as for the process) is left out. `gone` is the error when the process has ended.
 */
export function differentNamespaces(pid: number, names: readonly NsName[], gone = `process ${pid} is gone`): NsName[] {
  return names.filter((ns) => {
    const ours = nsId('self', ns);
    const theirs = nsId(pid, ns);
    if (theirs === null && ours === null) return false;
    if (theirs === null) throw unreadable(pid, ns, gone);
    return theirs !== ours;
  });
}

/** Why /proc/PID/ns/NS cannot be read, as the error to give. */
function unreadable(pid: number, ns: NsName, gone: string): NsboxError {
  const step = `join the ${ns} namespace`;
  let why: string;
  try {
    readlinkSync(`/proc/${pid}/ns/${ns}`);
    why = 'it changed meanwhile';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return new NsboxError(gone, { code: 'ESRCH', step });
    why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (e as Error).message;
  }
  const name = ns === 'mnt' ? 'mount' : ns;
  return new NsboxError(`cannot join the ${name} namespace of process ${pid}: ${why}`, { code: 'EPERM', step });
}

/** v1 cgroups: the child moves itself, writing 0 to `tasks` (one thread, itself: the kernel skips
 *  the global lock and its RCU grace period that a write to cgroup.procs pays, ~5-30 ms here). */
export function execPlan(s: ExecSpec, v1Cgroups: string[]): Step[] {
  const flags = s.namespaces.reduce((f, ns) => f | NS_FLAGS[ns], 0);
  const b = new PlanBuilder();
  b.add('start', op.prctl(PR_SET_DUMPABLE, [0, 0, 0, 0], 'make the process non-dumpable'));
  b.add('stdio', ...op.stdioOps(s.stdio));
  b.add('descriptors', op.closeOthers([s.pidfd]));
  for (const dir of v1Cgroups) b.add('cgroup', op.writeFile(`${dir}/tasks`, '0', `join the container's cgroup ${dir}`));
  if (flags)
    b.add('namespaces', {
      ...op.setns(s.pidfd, flags, s.namespaces.join(', ')),
      desc: `join the ${s.namespaces.join(', ')} namespaces`,
    });
  b.add('namespaces', op.close([s.pidfd], 'the pidfd'));
  b.add('session', op.setsid());
  if (s.tty) b.add('session', op.setTty(0));
  // The container's own credential steps, in the phases its plan had them.
  for (const c of s.creds) b.add(c.phase, c.step);
  if (s.cwd !== undefined) b.add('cwd', op.chdirInRoot(s.cwd));
  b.add('exec-fds', op.closeFds(3));
  if (s.namespaces.includes('pid')) b.add('init', op.init());
  b.add('exec', op.exec(s.command[0], s.command, s.env, commandCandidates(s.command[0], s.env)));
  const steps = b.build().steps;
  checkFilterLetsPlanRun(steps);
  return steps;
}

export class Exec {
  readonly pid: number;
  /** Settles when the command runs, or rejects with the step that failed. */
  readonly ready: Promise<void>;
  readonly exited: Promise<ExecResult>;
  private pidfd: number;
  private done = false;

  constructor(s: ExecSpec) {
    // A directory as stdio would stay open in the container: fchdir(0) would leave its root.
    s.stdio.forEach((fd, i) => {
      let dir = false;
      try {
        dir = fstatSync(fd).isDirectory();
      } catch {
        /* not an fd: refused where it is used */
      }
      if (dir) {
        throw new NsboxError(
          `stdio[${i}] (fd ${fd}) is a directory: the process could leave the container's root through it`,
          { field: 'stdio' },
        );
      }
    });
    const join = s.cgroup ? joinCgroupsOf(s.pid) : { fd: undefined, v1: [] as string[], close() {} };
    const plan = encode(execPlan(s, join.v1));
    let started: ReturnType<typeof spawnPlan>;
    try {
      started = spawnPlan(plan, { flags: 0, cgroupFd: join.fd }, () => {
        this.done = true;
      });
    } finally {
      join.close();
    }
    this.pid = started.child.pid;
    this.pidfd = started.child.pidfd;
    this.exited = started.exit.then((w) => {
      const signal = w.signal === null ? null : signalName(w.signal);
      return {
        code: w.code,
        signal,
        status: w.code ?? 128 + (w.signal ?? 0),
        userUs: w.userUs,
        systemUs: w.systemUs,
        maxRssKb: w.maxRssKb,
      };
    });
    this.ready = whenExecuted(started.child.errFd, plan, (failed, errno) => {
      // ESRCH from setns: PID 1 is gone; ENOMEM from the fork into the PID namespace: it is going.
      const gone = (failed?.kind === 'setns' && errno === 3) || (failed?.kind === 'init' && errno === 12);
      return gone
        ? new NsboxError('the container is not running any more', { kind: 'step', code: 'ESRCH', step: failed!.desc })
        : undefined;
    });
    this.ready.catch(() => {});
    this.exited.catch(() => {});
  }

  /** Signal the reaper, which passes it on to the command. */
  kill(sig: number): void {
    if (this.done) return;
    try {
      native.pidfdSendSignal(this.pidfd, sig);
    } catch {
      /* ended */
    }
  }
}
