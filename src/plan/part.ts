// What one concern (cgroups, user namespace, terminal, init, ...) adds to a container's start: steps
// to phases of its plan, and parent-side work around the clone. Shared here so that concerns never
// reach up to container.ts for these types.
import type { Plan, PlanBuilder } from './builder.js';

/** Resources used by the whole container (every process in it, from its cgroup when it has one). */
export interface Usage {
  cpuUserUs: number;
  cpuSystemUs: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  pids: number;
}

export interface ExitStatus {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal name (e.g. 'SIGKILL'), or null. */
  signal: NodeJS.Signals | null;
  /** What the shell would report: the code, or 128 + the signal number. */
  status: number;
  /** Killed by the kernel's OOM killer inside the container's memory limit. */
  oomKilled: boolean;
  /** Final usage. Without a cgroup: PID 1's rusage (its reaped descendants included). */
  usage: Usage;
}

/**
 * Each part is made from the resolved spec before clone; it adds its steps to the plan's phases,
 * the parent runs `beforeRelease` while the child waits at its first step, and `afterExit` once
 * PID 1 has been reaped.
 */
export interface StartPart {
  /** Add steps to the plan's phases (pure: no host I/O; called once, before clone). */
  steps?(b: PlanBuilder): void;
  /** Told the finished plan (e.g. to note what exec must replay). */
  planned?(plan: Plan): void;
  /** The command is given when the held container is released (src/plan/hold.ts): the plan ends in heldExec. */
  execsHeld?: boolean;
  /** Extra clone flags. */
  flags?: number;
  /** The child joins a user namespace itself (no mknod there: the host's device nodes are bound instead);
   *  setgroups: false where that namespace denies it (the groups are left then, as runc leaves them). */
  joinsUserns?: { setgroups: boolean };
  /** Clone flags to leave out (e.g. a namespace the child unshares later in its plan). */
  clearFlags?: number;
  /** The child is made our parent's (CLONE_PARENT), which reaps it: `afterExit` is then not run by us
   *  once it started (nsbox-monitor runs the clean-up step), only when its start fails. */
  adopted?: boolean;
  /** A cgroup v2 directory fd for CLONE_INTO_CGROUP. */
  cgroupFd?: number;
  /** Parent-side work between clone and the child's go-ahead (e.g. writing uid_map). */
  beforeRelease?(pid: number): void;
  /** Told the pid once the child exists, without holding it back (no wait step, so the fast start);
   *  `held`: the child waits for beforeRelease steps (else, cloned with CLONE_VFORK, it has exec'd). */
  started?(pid: number, held: boolean): void;
  /** Parent-side work after PID 1 ended (e.g. reading OOM events, removing the cgroup); may set
   *  status.oomKilled and status.usage. */
  afterExit?(status: ExitStatus): void | Promise<void>;
  /** Removal of what afterExit read from (e.g. the cgroup), after it; run before the status is reported
   *  unless the container was started with deferCleanup (`offThread` then: off the JavaScript thread). */
  cleanup?(offThread: boolean): Promise<void>;
  /** Live usage of the whole container. */
  stats?(): Usage;
  /** Undo what was made before clone when the start fails. */
  abort?(): void;
}
