// Where each cgroup controller lives on this host: the cgroup2 hierarchy when it offers the
// controller, else a v1 hierarchy that has it. Read from /proc/self/mountinfo and /proc/self/cgroup.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The controllers nsbox uses. cpuacct and freezer are v1 names; on v2 they are core files. */
export type Controller =
  | 'cpu'
  | 'cpuacct'
  | 'cpuset'
  | 'memory'
  | 'pids'
  | 'freezer'
  | 'io'
  | 'hugetlb'
  | 'net_cls'
  | 'net_prio'
  | 'rdma';
export const CONTROLLERS: Controller[] = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'freezer'];
/** Used only when a limit asks for them. 'io' is v2's name; on v1 it is the blkio hierarchy. */
export const MORE_CONTROLLERS: Controller[] = ['io', 'hugetlb', 'net_cls', 'net_prio', 'rdma'];

const V1_CONTROLLERS = new Set([
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'blkio',
  'perf_event',
  'net_prio',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
]);

export interface Hierarchy {
  version: 1 | 2;
  /** Where it is mounted, e.g. /sys/fs/cgroup/memory. */
  mount: string;
  /** v1: the hierarchy's controllers (the mount options); v2: those enabled for our `nsbox` parent. */
  controllers: string[];
  /** Our own cgroup in it, as a directory. */
  own: string;
  /** The directory that holds the `nsbox` parent. */
  base: string;
}

export interface Hierarchies {
  v2?: Hierarchy;
  v1: Hierarchy[];
  /** v1 hierarchies with no controller (name=systemd): no limit lives there, but each has a
   *  release_agent, so a container that can mount gets a cgroup in them too. */
  named: Hierarchy[];
  /** The hierarchy each controller is taken from (absent: the host has it nowhere). */
  byController: Partial<Record<Controller, Hierarchy>>;
}

interface MountEntry {
  root: string;
  mountpoint: string;
  fstype: string;
  superOpts: string[];
}

const unescapeOctal = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));

function cgroupMounts(mountinfo: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const f = line.slice(0, sep).split(' ');
    const [fstype, , opts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    out.push({ root: unescapeOctal(f[3]), mountpoint: unescapeOctal(f[4]), fstype, superOpts: opts.split(',') });
  }
  return out;
}

/** Our cgroup path inside the mount, or undefined when the mount does not show it. */
function inside(m: MountEntry, path: string): string | undefined {
  if (m.root === '/') return `${m.mountpoint}${path === '/' ? '' : path}`;
  if (path === m.root) return m.mountpoint;
  if (path.startsWith(`${m.root}/`)) return `${m.mountpoint}${path.slice(m.root.length)}`;
  return undefined;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

function readControllers(dir: string): string[] {
  try {
    return readFileSync(`${dir}/cgroup.controllers`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Parses the host's cgroup layout. On v2 the `nsbox` parent goes beside our own cgroup (in its
 * parent), since a cgroup holding processes may not hand controllers to children; at the root,
 * which is exempt, it goes right under it. On v1 it goes under our own cgroup, so containers stay
 * inside the caller's limits.
 */
export function parseHierarchies(mountinfo: string, selfCgroup: string): Hierarchies {
  const mounts = cgroupMounts(mountinfo);
  const paths = new Map<string, string>(); // controllers field ('' for v2) -> path
  for (const line of selfCgroup.trim().split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) paths.set(m[1], m[2]);
  }
  const h: Hierarchies = { v1: [], named: [], byController: {} };
  const seen = new Set<string>();
  for (const m of mounts) {
    if (m.fstype === 'cgroup2') {
      const path = paths.get('');
      if (h.v2 || path === undefined) continue;
      const own = inside(m, path);
      if (own === undefined) continue;
      const base = path === '/' || own === m.mountpoint ? own : dirname(own);
      h.v2 = { version: 2, mount: m.mountpoint, controllers: readControllers(base), own, base };
      continue;
    }
    const v1Opt = (o: string) => V1_CONTROLLERS.has(o) || o.startsWith('name=');
    const controllers = m.superOpts.filter(v1Opt);
    const key = controllers.join(',');
    if (controllers.length === 0 || seen.has(key)) continue;
    const path = [...paths].find(([k]) => sameSet(k.split(',').filter(v1Opt), controllers))?.[1];
    const own = path === undefined ? undefined : inside(m, path);
    if (own === undefined) continue;
    seen.add(key);
    const named = controllers.every((c) => c.startsWith('name='));
    (named ? h.named : h.v1).push({ version: 1, mount: m.mountpoint, controllers, own, base: own });
  }
  for (const c of [...CONTROLLERS, ...MORE_CONTROLLERS]) {
    const v1 = h.v1.find((x) => x.controllers.includes(c === 'io' ? 'blkio' : c));
    if (h.v2?.controllers.includes(c)) h.byController[c] = h.v2;
    else if (v1) h.byController[c] = v1;
  }
  return h;
}

let cached: Hierarchies | undefined;

/** The host's layout, read once per process. */
export function hierarchies(): Hierarchies {
  cached ??= parseHierarchies(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  return cached;
}

/** 'v2', 'v1', or 'hybrid' when controllers come from both. */
export function describeMode(h: Hierarchies, used: Controller[] = ['cpu', 'memory', 'pids']): string {
  const versions = new Set(used.map((c) => h.byController[c]?.version).filter((v) => v !== undefined));
  if (versions.size === 0) return 'none';
  if (versions.size === 2) return 'mixed v1/v2';
  return versions.has(2) ? 'v2' : 'v1';
}
