// Registers a container in the state directory and moves it through its life cycle. Used by
// the detached monitor and by a foreground `run` (which is its own monitor).
import { resolve } from 'node:path';
import { isImageArg } from '../images/rwlayer.js';
import type { ExitStatus, StartPart } from '../plan/part.js';
import type { Plan } from '../plan/builder.js';
import { credentialSteps } from '../exec/creds.js';
import { checkName, randomId } from '../spec.js';
import type { SignalMode } from '../signals.js';
import { markStopped } from './exit.js';
import { procStat } from './proc.js';
import { openRoot, type Dir } from './dir.js';
import {
  closeEntry,
  createEntry,
  openEntry,
  removeEntry,
  selfStart,
  updateOpen,
  type ContainerState,
  type OpenEntry,
} from './store.js';

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
  signals?: SignalMode;
  /** What `inspect` shows of the container's set-up: its limits and mounts, as given. */
  config?: ContainerState['config'];
  /** The process that holds the container (default: this one): a detached container's nsbox-monitor. */
  monitor?: { pid: number; start: number };
}

export class Tracker {
  readonly id = randomId();
  readonly name: string;
  /** The state root, opened once: every later step goes to the same directory. */
  private readonly root: Dir;
  /** Its directory and lock file, held open from creation to removal: each step goes straight to them. */
  private readonly entry: OpenEntry;
  private removed = false;
  private readonly autoRemove: boolean;
  private readonly image: boolean;

  constructor(o: TrackOptions) {
    this.name = checkName(o.name ?? this.id); // before anything is made
    this.autoRemove = o.autoRemove;
    this.image = isImageArg(o.rootfs);
    const st: ContainerState = {
      id: this.id,
      name: this.name,
      status: 'creating',
      command: o.command,
      rootfs: o.rootfs === 'host' || this.image ? o.rootfs : resolve(o.rootfs),
      hostname: o.hostname ?? this.name,
      createdAt: new Date().toISOString(),
      pid: 0,
      pidStart: 0,
      monitor: o.monitor ?? { pid: process.pid, start: selfStart() },
      detached: o.detached,
      autoRemove: o.autoRemove,
      init: o.init,
      tty: o.tty,
      signals: o.signals,
      config: o.config,
      exec: { env: [], cwd: '/', creds: [] },
      logLimit: o.logLimit,
    };
    this.root = openRoot(true)!;
    this.entry = createEntry(st, this.root);
  }

  /** The container's directory, open (the caller closes it): for its log. */
  openDir(): Dir {
    return openEntry(this.id, this.root);
  }

  private exec: ContainerState['exec'] | undefined;
  private pid: { pid: number; start: number } | null = null;

  /**
   * Notes what exec needs from the plan, and the pid once the container exists, without holding the
   * child back (no wait step, so the start can take the fast path). A held start records it as
   * created now (the parent's steps come before the command); else it is written with `running`, one
   * state write on the way to the command, not two.
   */
  part(): StartPart {
    return {
      planned: (plan: Plan) => {
        const last = (kind: string) => [...plan.steps].reverse().find((s) => s.kind === kind);
        const exec = last('exec'),
          cwd = last('chdirInRoot');
        this.exec = {
          env: exec?.kind === 'exec' ? exec.env : [],
          cwd: cwd?.kind === 'chdirInRoot' ? cwd.path : '/',
          creds: credentialSteps(plan),
        };
      },
      started: (pid: number, held: boolean) => {
        this.pid = { pid, start: procStat(pid)?.start ?? 0 };
        if (!held) return;
        updateOpen(this.entry, this.id, (st) => {
          st.status = 'created';
          this.record(st);
        });
      },
    };
  }

  private record(st: ContainerState): void {
    if (this.pid) {
      st.pid = this.pid.pid;
      st.pidStart = this.pid.start;
    }
    if (this.exec) st.exec = this.exec;
  }

  /** The command runs (execve done): its pid, what exec needs and the time, in one write. */
  running(): void {
    updateOpen(this.entry, this.id, (st) => {
      st.status = 'running';
      st.startedAt = new Date().toISOString();
      this.record(st);
    });
  }

  stopped(exit: ExitStatus | null, error?: string): void {
    if (this.autoRemove) return this.remove({ id: this.id, name: this.name } as ContainerState);
    updateOpen(this.entry, this.id, (s) => markStopped(s, exit, new Date().toISOString(), error));
    closeEntry(this.entry);
  }

  /** The container never ran (set-up failed): leave nothing behind. */
  failed(): void {
    this.remove({ id: this.id, name: this.name } as ContainerState);
  }

  private remove(st: ContainerState): void {
    if (this.removed) return;
    this.removed = true;
    closeEntry(this.entry);
    removeEntry(st, this.root, this.image);
  }
}
