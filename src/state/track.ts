// Registers a container in the state directory and moves it through its life cycle. Used by
// the detached monitor and by a foreground `run` (which is its own monitor).
import { resolve } from 'node:path';
import type { ExitStatus, StartPart } from '../container.js';
import { OP, type Op } from '../plan/ops.js';
import { lastIndexOf } from '../exec/init.js';
import { randomId } from '../spec.js';
import { procStat } from './proc.js';
import { createEntry, dirOf, removeEntry, selfStart, update, type ContainerState, type SavedOp } from './store.js';

export interface TrackOptions {
  name?: string;
  rootfs: string;
  command: string[];
  hostname?: string;
  detached: boolean;
  autoRemove: boolean;
  init: boolean;
  tty: boolean;
  logLimit: number;
}

const PR_SET_KEEPCAPS = 8, PR_SET_SECUREBITS = 28, PR_SET_NO_NEW_PRIVS = 38;
const CRED_PRCTLS = new Set([PR_SET_KEEPCAPS, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS]);
const CRED_OPS = new Set<number>([OP.SETRLIMIT, OP.UMASK, OP.SETGROUPS, OP.SETRESGID, OP.SETRESUID, OP.CAPS, OP.SECCOMP]);

/** The steps of a container's plan that set who its command runs as, for exec to replay. */
export function credentialOps(ops: readonly Op[]): SavedOp[] {
  const out: SavedOp[] = [];
  for (const o of ops) {
    if (!CRED_OPS.has(o.op) && !(o.op === OP.PRCTL && CRED_PRCTLS.has(o.n?.[0] ?? -1))) continue;
    out.push({ op: o.op, s: o.s, n: o.n, b: o.b?.toString('base64'), desc: o.desc });
  }
  return out;
}

export class Tracker {
  readonly id = randomId();
  readonly name: string;
  readonly dir: string;
  private removed = false;
  private readonly autoRemove: boolean;

  constructor(o: TrackOptions) {
    this.name = o.name ?? this.id;
    this.autoRemove = o.autoRemove;
    const st: ContainerState = {
      id: this.id, name: this.name, status: 'creating', rootfs: o.rootfs === 'host' ? 'host' : resolve(o.rootfs), command: o.command,
      hostname: o.hostname ?? this.name, createdAt: new Date().toISOString(), pid: 0, pidStart: 0,
      monitor: { pid: process.pid, start: selfStart() }, detached: o.detached, autoRemove: o.autoRemove,
      init: o.init, tty: o.tty, exec: { env: [], cwd: '/', creds: [] }, logLimit: o.logLimit,
    };
    createEntry(st);
    this.dir = dirOf(this.id);
  }

  private exec: ContainerState['exec'] | undefined;

  /**
   * Notes what exec needs from the plan, and records it with the pid once the container exists
   * (created), without holding the child back: no wait step, so the start can take the fast path.
   */
  part(): StartPart {
    return {
      plan: (ops: Op[]) => {
        const exec = ops[lastIndexOf(ops, OP.EXEC)];
        const [argc, envc] = exec?.n ?? [0, 0];
        const env = exec?.s?.slice(argc, argc + envc) ?? [];
        const cwd = ops[lastIndexOf(ops, OP.CHDIR_IN_ROOT)]?.s?.[0] ?? '/';
        this.exec = { env, cwd, creds: credentialOps(ops) };
      },
      started: (pid: number) => {
        const start = procStat(pid)?.start ?? 0;
        update(this.id, (st) => {
          st.status = 'created';
          st.pid = pid;
          st.pidStart = start;
          if (this.exec) st.exec = this.exec;
        });
      },
    };
  }

  running(): void {
    update(this.id, (st) => {
      st.status = 'running';
      st.startedAt = new Date().toISOString();
    });
  }

  stopped(exit: ExitStatus | null, error?: string): void {
    if (this.autoRemove) return this.remove({ id: this.id, name: this.name } as ContainerState);
    update(this.id, (s) => {
      s.status = 'stopped';
      s.finishedAt = new Date().toISOString();
      if (exit) s.exit = { code: exit.code, signal: exit.signal, status: exit.status, oomKilled: exit.oomKilled };
      if (error) s.error = error;
    });
  }

  /** The container never ran (set-up failed): leave nothing behind. */
  failed(): void {
    this.remove({ id: this.id, name: this.name } as ContainerState);
  }

  private remove(st: ContainerState): void {
    if (this.removed) return;
    this.removed = true;
    removeEntry(st);
  }
}
