// The cgroups a running process is in, as nsbox's cgroup code sees them: for exec to join them
// and for stats to read them. From /proc/PID/cgroup (host paths: we are in the host's cgroup
// namespace) and the hierarchies mounted here.
import { closeSync, existsSync, constants as fsConstants, openSync, readdirSync, readFileSync } from 'node:fs';
import { Cgroup, PARENT, type CgroupDir } from '../cgroups/cgroup.js';
import { CONTROLLERS, hierarchies, type Hierarchy } from '../cgroups/hierarchy.js';
import { NsboxError } from '../errors.js';

function lines(pid: number | 'self'): Map<string, string> {
  const out = new Map<string, string>(); // controllers field ('' for v2) -> path
  try {
    for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
      const m = /^\d+:([^:]*):(.*)$/.exec(line);
      if (!m) continue;
      const controllers = m[1].split(',').filter((c) => !c.startsWith('name='));
      out.set(controllers.length ? controllers.sort().join(',') : m[1], m[2]); // a named hierarchy by its name
    }
  } catch {
    /* gone */
  }
  return out;
}

const key = (h: Hierarchy) => (h.version === 2 ? '' : [...h.controllers].sort().join(','));

/** The directories pid is in, one per hierarchy we know; `differ` keeps only those unlike ours. */
export function cgroupDirs(pid: number, differ = false): CgroupDir[] {
  const h = hierarchies();
  const theirs = lines(pid);
  const ours = differ ? lines('self') : new Map<string, string>();
  const dirs: CgroupDir[] = [];
  for (const hier of [h.v2, ...h.v1, ...h.named]) {
    if (!hier) continue;
    const path = theirs.get(key(hier));
    if (path === undefined || (differ && ours.get(key(hier)) === path)) continue;
    const uses = CONTROLLERS.filter((c) => h.byController[c] === hier);
    dirs.push({ hierarchy: hier, path: `${hier.mount}${path === '/' ? '' : path}`, uses });
  }
  return dirs;
}

/** How a new process joins pid's cgroups: a v2 directory fd for clone3, and v1 directories it enters itself. */
export interface CgroupJoin {
  fd?: number;
  /** v1 directories for the child to enter first thing. */
  v1: string[];
  close(): void;
}

export function joinCgroupsOf(pid: number): CgroupJoin {
  // Unreadable means unknown, not none: the command would escape the container's limits (fail closed).
  if (lines(pid).size === 0) {
    // Gone meanwhile (an exec racing a stop): say so, as the other steps of exec do.
    if (!existsSync(`/proc/${pid}`)) {
      throw new NsboxError('the container is not running any more', { code: 'ESRCH', step: 'cgroup', kind: 'step' });
    }
    throw new NsboxError(`cannot read the cgroups of process ${pid}`, { code: 'ESRCH', step: 'cgroup' });
  }
  const dirs = cgroupDirs(pid, true);
  const v2 = dirs.find((d) => d.hierarchy.version === 2);
  let fd: number | undefined;
  if (v2) {
    try {
      fd = openSync(v2.path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    } catch (e) {
      throw new NsboxError(`cannot open the container's cgroup ${v2.path}: ${(e as Error).message}`, {
        step: 'cgroup',
      });
    }
  }
  return {
    fd,
    v1: dirs.filter((d) => d.hierarchy.version === 1).map((d) => d.path),
    close: () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** The cgroups nsbox made for container `id` (named `<id>.<owner pid>.<owner start>` under `nsbox`). */
export function cgroupsNamed(id: string): Cgroup[] {
  const h = hierarchies();
  const byName = new Map<string, CgroupDir[]>();
  for (const hier of [h.v2, ...h.v1, ...h.named]) {
    if (!hier) continue;
    let names: string[];
    try {
      names = readdirSync(`${hier.base}/${PARENT}`).filter((n) => n.startsWith(`${id}.`));
    } catch {
      continue;
    }
    const uses = CONTROLLERS.filter((c) => h.byController[c] === hier);
    for (const n of names)
      byName.set(n, [...(byName.get(n) ?? []), { hierarchy: hier, path: `${hier.base}/${PARENT}/${n}`, uses }]);
  }
  return [...byName].map(([n, dirs]) => new Cgroup(n, dirs));
}

/** Kill what is left in a dead container's cgroups and remove them. */
export async function removeCgroupsOf(id: string): Promise<void> {
  for (const cg of cgroupsNamed(id)) {
    try {
      await cg.killAll();
      await cg.remove();
    } catch {
      /* another command is at it too */
    }
  }
}
