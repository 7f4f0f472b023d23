// The container's cgroup saved in its state file and loaded again by later commands (kill --all, delete).
import { Cgroup, type CgroupDir } from '../cgroups/cgroup.js';
import type { Controller, Hierarchy } from '../cgroups/hierarchy.js';
import type { SavedCgroup } from './state.js';

export function saveCgroup(cg: Cgroup): SavedCgroup {
  return { name: cg.name, dirs: cg.dirs.map((d) => ({ path: d.path, version: d.hierarchy.version, uses: d.uses })) };
}

/** The container's cgroup again, from its saved paths (enough to kill, freeze, read and remove it). */
export function loadCgroup(s: SavedCgroup): Cgroup {
  const dirs: CgroupDir[] = s.dirs.map((d) => ({
    path: d.path,
    uses: d.uses as Controller[],
    hierarchy: { version: d.version, mount: '', controllers: d.uses, own: '', base: '' } as unknown as Hierarchy,
  }));
  return new Cgroup(s.name, dirs);
}
