// A container's cgroup: one directory per hierarchy it uses, under an `nsbox` parent. Made before
// clone with the limits written; emptied (cgroup.kill, or freezer + SIGKILL on v1), read and removed
// after PID 1 ended.
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmdir as rmdirCb,
  rmdirSync,
  constants as fsConstants,
} from 'node:fs';
import { dirname } from 'node:path';
import type { Usage } from '../plan/part.js';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import { ownerProcess, procStat } from '../proc.js';
import { describe, errnoOf, readFile, readKeyed, readNumber, readPids, sleep, writeFile } from './files.js';
import type { Controller, Hierarchies, Hierarchy } from './hierarchy.js';
import type { ResolvedLimits } from './limits.js';
import { extraControllers, unifiedControllers, writeExtra, writeUnified } from './resources.js';

export interface CgroupDir {
  hierarchy: Hierarchy;
  path: string;
  /** The controllers read or written here. */
  uses: Controller[];
}

export const PARENT = 'nsbox';
/** `<container id>.<owner pid>.<owner start time>`: the owner is the process that made it. */
const NAME_RE = /^[0-9a-zA-Z_-]+\.(\d+)\.(\d+)$/;
/** Not v2 controllers: cpu.stat and cgroup.freeze are in every v2 cgroup. */
const V2_CORE = new Set<string>(['cpuacct', 'freezer']);

/** Start time of a process (clock ticks after boot), or undefined when it is gone (or a zombie). */
function startTime(pid: number | 'self'): string | undefined {
  const st = procStat(pid);
  return !st || st.state === 'Z' || st.state === 'X' ? undefined : String(st.start);
}

/** The name of a container's cgroup directory in any hierarchy: `<id>.<owner pid>.<owner start time>`
 *  (src/proc.ts: us, or a detached container's monitor), so the stale cleanup can tell when it is gone. */
export function cgroupName(id: string): string {
  const o = ownerProcess();
  return `${id}.${o.pid}.${o.start}`;
}

/** Which hierarchy serves which controller for a container with these limits. */
export function place(l: ResolvedLimits, h: Hierarchies): Map<Hierarchy, Controller[]> {
  const required: [Controller, string][] = [];
  if (l.memoryBytes !== undefined) required.push(['memory', 'memory']);
  if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined || l.cpuShares !== undefined)
    required.push(['cpu', 'CPU time']);
  if (l.cpusetCpus !== undefined) required.push(['cpuset', 'CPUs']);
  if (l.pids !== undefined) required.push(['pids', 'processes']);
  required.push(...extraControllers(l));
  for (const [c, what] of required) if (!h.byController[c]) throw missing(c, what, h);
  const out = new Map<Hierarchy, Controller[]>();
  const add = (hier: Hierarchy | undefined, c: Controller) => {
    if (hier && !out.get(hier)?.includes(c)) out.set(hier, [...(out.get(hier) ?? []), c]);
  };
  const wanted = new Set<Controller>(['memory', 'pids', ...required.map(([c]) => c)]);
  for (const c of wanted) add(h.byController[c], c);
  if (l.unified && Object.keys(l.unified).length) {
    // As runc: unified keys are v2 files; each one's controller must be there.
    if (!h.v2) throw new NsboxError('cannot apply unified: this host has no cgroup v2 hierarchy', { step: 'cgroup' });
    for (const c of unifiedControllers(l.unified)) {
      if (!h.v2.controllers.includes(c)) throw missing(c as Controller, `unified ${c}.*`, h);
      add(h.v2, c as Controller);
    }
  }
  // CPU usage: cpu.stat is in every v2 cgroup; v1 has cpuacct. Killing: cgroup.kill on v2, freezer on v1.
  const v2Main = h.v2 && ['memory', 'pids', 'cpu'].some((c) => out.get(h.v2!)?.includes(c as Controller));
  if (h.v2 && out.has(h.v2) && (v2Main || h.v1.length === 0)) add(h.v2, 'cpuacct');
  else if (out.size > 0) {
    add(h.byController.cpuacct, 'cpuacct');
    add(h.byController.freezer, 'freezer');
  }
  return out;
}

function missing(c: Controller, what: string, h: Hierarchies): NsboxError {
  let why = 'no cgroup filesystem is mounted (mount cgroup2 on /sys/fs/cgroup)';
  if (h.v2) {
    why =
      h.v2.base === h.v2.mount
        ? `the kernel offers no ${c} controller in ${h.v2.mount}/cgroup.controllers and no v1 hierarchy has it`
        : `the ${c} controller is not in ${h.v2.base}/cgroup.controllers: enable it with ` +
          `echo +${c} > ${dirname(h.v2.base)}/cgroup.subtree_control`;
  } else if (h.v1.length) why = `no cgroup v1 hierarchy has the ${c} controller (mount one, or boot with cgroup v2)`;
  return new NsboxError(`cannot limit ${what}: ${why}`, { step: 'cgroup' });
}

/** Hands controllers to children in dir's cgroup.subtree_control (v2), explaining a refusal. */
function enable(dir: string, controllers: Controller[]): void {
  const file = `${dir}/cgroup.subtree_control`;
  const on = (readFile(file) ?? '').trim().split(/\s+/);
  for (const c of controllers) {
    if (on.includes(c)) continue;
    try {
      writeFile(file, `+${c}`, `cannot enable the ${c} controller`);
    } catch (e) {
      const code = (e as NsboxError).code;
      const fix =
        code === 'EBUSY'
          ? `${dir} holds processes, and a cgroup with processes cannot hand controllers to children ` +
            `(no internal processes rule): move them into a child cgroup, or start nsbox from another cgroup`
          : code === 'ENOENT' || code === 'EINVAL'
            ? `${c} is not in ${dir}/cgroup.controllers: enable it in ${dirname(dir)}/cgroup.subtree_control first`
            : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
              ? 'run as root with /sys/fs/cgroup writable, or in a delegated cgroup' +
                ' (systemd-run --scope -p Delegate=yes)'
              : 'see the kernel log';
      throw new NsboxError(`${(e as Error).message}; ${fix}`, { code, step: 'cgroup' });
    }
  }
}

function mkdir(path: string): void {
  try {
    mkdirSync(path, 0o755);
  } catch (e) {
    if (errnoOf(e) === 'EEXIST') return;
    const fix = ['EACCES', 'EPERM', 'EROFS'].includes(errnoOf(e)) ? ': run as root with /sys/fs/cgroup writable' : '';
    throw new NsboxError(`cannot create cgroup ${path}: ${describe(e)}${fix}`, { code: errnoOf(e), step: 'cgroup' });
  }
}

/**
 * Makes the nsbox parent (set up by `prepare`) and a cgroup in it. The last container to leave
 * removes the parent, so it may vanish between the two mkdirs: then it is made again.
 */
export function mkdirIn(parent: string, path: string, prepare: () => void = () => {}): void {
  for (let attempt = 0; ; attempt++) {
    mkdir(parent);
    prepare();
    try {
      mkdir(path);
      return;
    } catch (e) {
      if ((e as NsboxError).code !== 'ENOENT' || attempt === 2) throw e;
    }
  }
}

/** The nsbox parent goes with its last cgroup (another container may still be in it: then it stays). */
export function removeParent(path: string): void {
  try {
    rmdirSync(dirname(path));
  } catch {
    /* not empty, or gone */
  }
}

/** A new v1 cpuset cgroup has no CPUs or memory nodes: take the parent's (or the limits'). */
function inheritCpuset(dir: string, cpus?: string, mems?: string): void {
  const parent = dirname(dir);
  for (const f of ['cpuset.mems', 'cpuset.cpus']) {
    const own = readFile(`${dir}/${f}`)?.trim();
    const mine = f === 'cpuset.cpus' ? cpus : mems;
    const value = mine !== undefined ? mine : readFile(`${parent}/${f}`)?.trim();
    if (!value || own === value) continue;
    writeFile(`${dir}/${f}`, value, `cannot set ${f}`);
  }
}

/** `update`: the limits of a running container (v1 cpuset files too, which a new cgroup inherits). */
function writeLimits(d: CgroupDir, l: ResolvedLimits, update = false): void {
  const v2 = d.hierarchy.version === 2;
  const set = (file: string, value: string | number, what: string) =>
    writeFile(`${d.path}/${file}`, String(value), `cannot set the ${what}`);
  if (d.uses.includes('memory') && l.memoryBytes !== undefined) {
    const swap = l.swapBytes ?? 0;
    const swapFile = v2 ? 'memory.swap.max' : 'memory.memsw.limit_in_bytes';
    const current = readNumber(`${d.path}/${swapFile}`);
    const memsw = v2 ? (swap < 0 ? 'max' : swap) : swap < 0 ? -1 : l.memoryBytes + swap;
    // v1: memory.limit_in_bytes may not exceed memsw, so a raise writes memsw first.
    const first = !v2 && current !== undefined && l.memoryBytes > current;
    if (first) set(swapFile, memsw, 'swap limit');
    set(v2 ? 'memory.max' : 'memory.limit_in_bytes', l.memoryBytes, 'memory limit');
    if (current !== undefined) {
      if (!first) set(swapFile, memsw, 'swap limit');
    } else if (swap !== 0) {
      throw new NsboxError(
        `cannot limit swap: this kernel has no ${swapFile} (swap accounting is off; boot with swapaccount=1)`,
        { step: 'cgroup' },
      );
    }
  }
  if (d.uses.includes('cpu')) {
    const { cpuQuotaUs: quota, cpuPeriodUs: period } = l;
    if (v2 && (quota !== undefined || period !== undefined))
      set('cpu.max', `${quota ?? 'max'}${period === undefined ? '' : ` ${period}`}`, 'CPU quota');
    if (!v2 && period !== undefined) set('cpu.cfs_period_us', period, 'CPU period');
    if (!v2 && quota !== undefined) set('cpu.cfs_quota_us', quota, 'CPU quota');
    if (l.cpuShares !== undefined) set(v2 ? 'cpu.weight' : 'cpu.shares', v2 ? l.cpuWeight! : l.cpuShares, 'CPU weight');
  }
  if (d.uses.includes('cpuset') && l.cpusetCpus !== undefined && (v2 || update))
    set('cpuset.cpus', l.cpusetCpus, 'CPU set');
  if (d.uses.includes('cpuset') && l.cpusetMems !== undefined && !v2 && update)
    set('cpuset.mems', l.cpusetMems, 'memory nodes');
  if (d.uses.includes('pids') && l.pids !== undefined) set('pids.max', l.pids, 'pids limit');
  const dir = { path: d.path, v2, uses: d.uses };
  writeExtra(dir, l);
  if (v2 && l.unified) writeUnified(dir, l.unified);
}

export class Cgroup {
  constructor(
    readonly name: string,
    readonly dirs: CgroupDir[],
  ) {}

  /** Makes the directories and writes the limits; on failure removes what it made. `at`: a path
   *  from each hierarchy's root (an OCI config's cgroupsPath) instead of nsbox's own place. */
  static create(id: string, l: ResolvedLimits, placement: Map<Hierarchy, Controller[]>, at?: string): Cgroup {
    const cg = new Cgroup(at ?? cgroupName(id), []);
    try {
      for (const [hier, uses] of placement) {
        const v2ctl = uses.filter((c) => !V2_CORE.has(c));
        const prepare = (dir: string) => {
          if (hier.version === 2) enable(dir, v2ctl);
          else if (hier.controllers.includes('cpuset')) inheritCpuset(dir);
        };
        const parent = at ? dirname(`${hier.mount}${at}`) : `${hier.base}/${PARENT}`;
        if (hier.version === 2) enable(at ? hier.mount : hier.base, v2ctl);
        // Each level between the hierarchy's root and the cgroup, prepared as nsbox's parent is.
        let dir = hier.mount;
        for (const name of at ? at.split('/').filter(Boolean).slice(0, -1) : []) {
          dir = `${dir}/${name}`;
          mkdir(dir);
          prepare(dir);
        }
        const d: CgroupDir = { hierarchy: hier, path: at ? `${hier.mount}${at}` : `${parent}/${cg.name}`, uses };
        mkdirIn(parent, d.path, () => prepare(parent));
        cg.dirs.push(d);
        if (hier.version === 1 && hier.controllers.includes('cpuset'))
          inheritCpuset(d.path, l.cpusetCpus, l.cpusetMems);
        writeLimits(d, l);
      }
    } catch (e) {
      cg.removeNow();
      throw e;
    }
    return cg;
  }

  /** New limits for a cgroup in use (`nsbox-runtime update`): only those given are written. */
  update(l: ResolvedLimits): void {
    for (const d of this.dirs) writeLimits(d, l, true);
  }

  get v2(): CgroupDir | undefined {
    return this.dirs.find((d) => d.hierarchy.version === 2);
  }

  dir(c: Controller): CgroupDir | undefined {
    return this.dirs.find((d) => d.uses.includes(c));
  }

  /** A directory fd of the v2 cgroup for clone3(CLONE_INTO_CGROUP). */
  openV2(): number | undefined {
    const d = this.v2;
    if (!d) return undefined;
    try {
      return openSync(d.path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    } catch (e) {
      throw new NsboxError(`cannot open cgroup ${d.path}: ${describe(e)}`, { code: errnoOf(e), step: 'cgroup' });
    }
  }

  /** v1: moves a process into every v1 directory (v2 got it at clone). */
  join(pid: number): void {
    for (const d of this.dirs) {
      if (d.hierarchy.version === 1)
        writeFile(`${d.path}/cgroup.procs`, String(pid), `cannot move the container into ${d.path}`);
    }
  }

  usage(): Usage & { peakKnown: boolean } {
    const u = { cpuUserUs: 0, cpuSystemUs: 0, memoryBytes: 0, memoryPeakBytes: 0, pids: 0, peakKnown: false };
    const acct = this.dir('cpuacct') ?? this.v2; // cpu.stat is in every v2 cgroup
    if (acct?.hierarchy.version === 2) {
      const s = readKeyed(`${acct.path}/cpu.stat`);
      u.cpuUserUs = s?.get('user_usec') ?? 0;
      u.cpuSystemUs = s?.get('system_usec') ?? 0;
    } else if (acct) {
      const user = readNumber(`${acct.path}/cpuacct.usage_user`);
      const sys = readNumber(`${acct.path}/cpuacct.usage_sys`);
      if (user !== undefined && sys !== undefined) {
        u.cpuUserUs = Math.round(user / 1000);
        u.cpuSystemUs = Math.round(sys / 1000);
      } else {
        const s = readKeyed(`${acct.path}/cpuacct.stat`); // USER_HZ ticks
        u.cpuUserUs = (s?.get('user') ?? 0) * 10_000;
        u.cpuSystemUs = (s?.get('system') ?? 0) * 10_000;
      }
    }
    const mem = this.dir('memory');
    if (mem) {
      const v2 = mem.hierarchy.version === 2;
      u.memoryBytes = readNumber(`${mem.path}/${v2 ? 'memory.current' : 'memory.usage_in_bytes'}`) ?? 0;
      const peak = readNumber(`${mem.path}/${v2 ? 'memory.peak' : 'memory.max_usage_in_bytes'}`);
      u.peakKnown = peak !== undefined;
      u.memoryPeakBytes = Math.max(peak ?? 0, u.memoryBytes);
    }
    const pids = this.dir('pids');
    if (pids) u.pids = readNumber(`${pids.path}/pids.current`) ?? 0;
    return u;
  }

  /** OOM kills in the container; `sigkilled` says PID 1 died of SIGKILL (for kernels before 4.13). */
  oomKilled(sigkilled: boolean): boolean {
    const mem = this.dir('memory');
    if (!mem) return false;
    if (mem.hierarchy.version === 2) return (readKeyed(`${mem.path}/memory.events`)?.get('oom_kill') ?? 0) > 0;
    const kills = readKeyed(`${mem.path}/memory.oom_control`)?.get('oom_kill');
    if (kills !== undefined) return kills > 0;
    return sigkilled && (readNumber(`${mem.path}/memory.failcnt`) ?? 0) > 0;
  }

  /** Every process in the cgroup, sub-cgroups included. */
  private procs(): number[] {
    const d = this.v2 ?? this.dir('freezer') ?? this.dirs[0];
    return d ? treeOf(d.path).flatMap((p) => readPids(`${p}/cgroup.procs`)) : [];
  }

  /** Kills every process left in the cgroup and waits until it is empty. */
  async killAll(): Promise<void> {
    if (this.procs().length === 0) return;
    const v2 = this.v2;
    const fz = this.dir('freezer');
    if (v2 && readFile(`${v2.path}/cgroup.kill`) !== undefined) {
      writeFile(`${v2.path}/cgroup.kill`, '1', 'cannot kill the container');
    } else if (v2) {
      await this.freezeKill(
        `${v2.path}/cgroup.freeze`,
        '1',
        '0',
        () => readKeyed(`${v2.path}/cgroup.events`)?.get('frozen') === 1,
      );
    } else if (fz) {
      const state = `${fz.path}/freezer.state`;
      await this.freezeKill(state, 'FROZEN', 'THAWED', () => readFile(state)?.trim() === 'FROZEN');
    } else {
      this.killEach(this.procs());
    }
    // Dying processes leave within moments; anything that slipped through is killed again.
    for (let i = 0; i < 500; i++) {
      const left = this.procs();
      if (left.length === 0) return;
      if (i % 20 === 19) this.killEach(left);
      await sleep(10);
    }
  }

  /** Freeze so nothing forks while we kill, SIGKILL each process, thaw so they die. */
  private async freezeKill(file: string, freeze: string, thaw: string, frozen: () => boolean): Promise<void> {
    writeFile(file, freeze, 'cannot freeze the container');
    for (let i = 0; i < 100 && !frozen(); i++) await sleep(5);
    this.killEach(this.procs());
    writeFile(file, thaw, 'cannot thaw the container');
  }

  /**
   * SIGKILL through pidfds, each only if its pid is still in the cgroup once the pidfd is open: a pid
   * read from cgroup.procs may have ended and been reused by a host process since.
   */
  private killEach(pids: number[]): void {
    const fds: [number, number][] = [];
    for (const pid of pids) {
      try {
        fds.push([pid, native.pidfdOpen(pid)]);
      } catch {
        /* gone */
      }
    }
    const still = new Set(this.procs());
    for (const [pid, fd] of fds) {
      try {
        if (still.has(pid)) native.pidfdSendSignal(fd, 9);
      } catch {
        /* ended meanwhile */
      }
      closeSync(fd);
    }
  }

  /**
   * Removes the directories, retrying while the last processes leave. `offThread`: the first try on libuv's
   * pool (where nobody waits for it: a round trip per rmdir costs more than the rmdir on this thread).
   */
  async remove(offThread = false): Promise<void> {
    if (offThread && (await this.removeOffThread())) return;
    for (let i = 0; i < 200; i++) {
      if (this.removeNow()) return;
      await sleep(10);
    }
    throw new NsboxError(`cannot remove cgroup ${this.dirs.map((d) => d.path).join(', ')}: still busy`, {
      code: 'EBUSY',
      step: 'cgroup',
    });
  }

  /**
   * One rmdir per directory, then of its nsbox parent, one after another on libuv's pool (at once they would
   * only queue on the kernel's cgroup lock); true when all are gone, false to leave the rest to removeNow.
   */
  private async removeOffThread(): Promise<boolean> {
    let all = true;
    for (const d of this.dirs) {
      const gone = await rmdir(d.path).then(yes, (e) => errnoOf(e) === 'ENOENT');
      if (gone) await rmdir(dirname(d.path)).catch(() => {}); // not empty, or gone: fine
      all &&= gone;
    }
    return all;
  }

  /** rmdir of every directory (and of the nsbox parent once empty); true when all are gone. */
  removeNow(): boolean {
    let done = true;
    for (const d of this.dirs) {
      // Most often it has no sub-cgroup: one rmdir, without listing its (v1: dozens of) files first.
      try {
        rmdirSync(d.path);
        continue;
      } catch (e) {
        if (errnoOf(e) === 'ENOENT') continue;
      }
      for (const p of treeOf(d.path).reverse()) {
        try {
          rmdirSync(p);
        } catch (e) {
          if (errnoOf(e) !== 'ENOENT') done = false;
        }
      }
    }
    if (done) for (const d of this.dirs) removeParent(d.path);
    return done;
  }
}

/** A cgroup directory and its sub-cgroups, parents first. */
function treeOf(path: string): string[] {
  const out = [path];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const e of readdirSync(out[i], { withFileTypes: true }))
        if (e.isDirectory()) out.push(`${out[i]}/${e.name}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

const yes = () => true;
const rmdir = (path: string) => new Promise<void>((res, rej) => rmdirCb(path, (e) => (e ? rej(e) : res())));

export const closeFd = (fd: number | undefined) => {
  if (fd !== undefined) closeSync(fd);
};

/**
 * Cgroups under `nsbox` whose owner process is gone (a CLI or monitor that was SIGKILLed): what is
 * left in them is killed and they are removed. Returns the names cleaned.
 */
export async function cleanStale(h: Hierarchies, log?: (line: string) => void): Promise<string[]> {
  const found = new Map<string, CgroupDir[]>();
  for (const hier of [h.v2, ...h.v1, ...h.named]) {
    if (!hier) continue;
    let entries;
    try {
      entries = readdirSync(`${hier.base}/${PARENT}`, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const m = e.isDirectory() ? NAME_RE.exec(e.name) : null;
      if (!m || startTime(Number(m[1])) === m[2]) continue;
      const uses = (hier.version === 2 ? ['cpuacct', 'memory', 'pids'] : hier.controllers) as Controller[];
      found.set(e.name, [
        ...(found.get(e.name) ?? []),
        { hierarchy: hier, path: `${hier.base}/${PARENT}/${e.name}`, uses },
      ]);
    }
  }
  for (const [name, dirs] of found) {
    const cg = new Cgroup(name, dirs);
    try {
      await cg.killAll();
      await cg.remove();
      log?.(`removed stale cgroup ${dirs.map((d) => d.path).join(', ')}`);
    } catch (e) {
      log?.(`cannot remove stale cgroup ${name}: ${(e as Error).message}`); // another nsbox may be at it too
    }
  }
  return [...found.keys()];
}
