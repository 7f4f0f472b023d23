// Start a process inside a running container, nsenter-style. The child of clone3() is the
// process that straddles host and container: it makes itself non-dumpable before anything
// else, closes every fd it inherited, joins the target's namespaces through its pidfd in one
// setns() (the kernel enters the user namespace first, so the rest are permitted), and, since
// joining a PID namespace only applies to children, forks once more (OP_INIT): the reaper
// stays outside and forwards signals, the second child is a member and execs the command.
import { fstatSync } from 'node:fs';
import { signalName } from '../container.js';
import { NsboxError, stepError } from '../errors.js';
import * as native from '../native.js';
import { CLONE } from '../native.js';
import * as op from '../plan/ops.js';
import { execResult, reaped } from '../plan/child.js';
import { OP, type Op } from '../plan/ops.js';
import { commandCandidates } from '../spec.js';
import { nsId, type NsName } from '../state/proc.js';
import { joinCgroupsOf } from './cgroup.js';
import { insertSeccomp } from '../seccomp/index.js';

const PR_SET_DUMPABLE = 4;
const CLONE_NEWTIME = 0x80;

export const NS_FLAGS: Record<NsName, number> = {
  user: CLONE.NEWUSER, mnt: CLONE.NEWNS, uts: CLONE.NEWUTS, ipc: CLONE.NEWIPC, net: CLONE.NEWNET,
  pid: CLONE.NEWPID, cgroup: CLONE.NEWCGROUP, time: CLONE_NEWTIME,
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
  /** Credential steps (user, groups, capabilities, no_new_privs, seccomp) in order. */
  creds: Op[];
  /** The command's 0, 1, 2 (host fds, dup'ed into place before joining). */
  stdio: [number, number, number];
  /** stdio is a terminal: make it the controlling terminal. */
  tty: boolean;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  status: number;
}

/** The namespaces of `names` in which pid differs from us. */
export function differentNamespaces(pid: number, names: readonly NsName[]): NsName[] {
  return names.filter((ns) => {
    const theirs = nsId(pid, ns);
    return theirs !== null && theirs !== nsId('self', ns);
  });
}

/** v1 cgroups: the child moves itself, writing 0 to `tasks` (one thread, itself: the kernel skips
 *  the global lock and its RCU grace period that a write to cgroup.procs pays, ~5-30 ms here). */
export function execPlan(s: ExecSpec, v1Cgroups: string[]): Op[] {
  const flags = s.namespaces.reduce((f, ns) => f | NS_FLAGS[ns], 0);
  const ops: Op[] = [op.prctl(PR_SET_DUMPABLE, [0, 0, 0, 0], 'make the process non-dumpable')];
  for (const dir of v1Cgroups) ops.push({ op: OP.WRITE_FILE, s: [`${dir}/tasks`, '0'], desc: `join the container's cgroup ${dir}` });
  ops.push(...op.stdioOps(s.stdio));
  ops.push(op.closeOthers([s.pidfd]));
  if (flags) ops.push({ ...op.setns(s.pidfd, flags, s.namespaces.join(', ')), desc: `join the ${s.namespaces.join(', ')} namespaces` });
  ops.push(op.close([s.pidfd], 'the pidfd'), op.setsid());
  if (s.tty) ops.push(op.setTty(0));
  if (s.cwd !== undefined) ops.push(op.chdirInRoot(s.cwd));
  ops.push(...s.creds, op.closeFds(3));
  // The seccomp filter goes where the container's own plan has it (src/seccomp/index.ts insertSeccomp):
  // last before exec, or before the user and capability steps when no_new_privs is off.
  const seccomp = ops.find((o) => o.op === OP.SECCOMP) ?? null;
  const rest = ops.filter((o) => o.op !== OP.SECCOMP);
  if (s.namespaces.includes('pid')) rest.push(op.init());
  rest.push(op.exec(s.command[0], s.command, s.env, commandCandidates(s.command[0], s.env)));
  return insertSeccomp(rest, seccomp);
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
      } catch { /* not an fd: refused where it is used */ }
      if (dir) throw new NsboxError(`stdio[${i}] (fd ${fd}) is a directory: the process could leave the container's root through it`, { step: 'stdio' });
    });
    const join = s.cgroup ? joinCgroupsOf(s.pid) : { fd: undefined, v1: [] as string[], close() {} };
    const ops = execPlan(s, join.v1);
    let child: native.SpawnedChild;
    try {
      child = native.spawn({ flags: 0, ops, cgroupFd: join.fd });
    } finally {
      join.close();
    }
    this.pid = child.pid;
    this.pidfd = child.pidfd;
    this.exited = reaped(child.pidfd, () => { this.done = true; }).then((w) => {
      const signal = w.signal === null ? null : signalName(w.signal);
      return { code: w.code, signal, status: w.code ?? 128 + (w.signal ?? 0) };
    });
    this.ready = execResult(child.errFd).then((f) => {
      if (!f) return;
      const failed = ops[f.step];
      // ESRCH from setns: PID 1 is gone; ENOMEM from the fork into the PID namespace: it is going.
      const gone = (failed?.op === OP.SETNS && f.errno === 3) || (failed?.op === OP.INIT && f.errno === 12);
      if (gone) throw new NsboxError('the container is not running any more', { code: 'ESRCH', step: failed.desc });
      throw stepError(failed, f.errno);
    });
    this.ready.catch(() => {});
    this.exited.catch(() => {});
  }

  /** Signal the reaper, which passes it on to the command. */
  kill(sig: number): void {
    if (this.done) return;
    try {
      native.pidfdSendSignal(this.pidfd, sig);
    } catch { /* ended */ }
  }
}
