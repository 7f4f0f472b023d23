// `nsbox-runtime update`: runc's command, new limits for a container's cgroup (podman update, containerd's
// UpdateTask). -r takes a LinuxResources JSON (the config's linux.resources); flags override its fields.
// Both go through the config's parser and the cgroup layer `create` uses: one mapping to files.
import { readFileSync } from 'node:fs';
import { place } from '../cgroups/cgroup.js';
import { readNumber } from '../cgroups/files.js';
import { hierarchies } from '../cgroups/hierarchy.js';
import { resolveLimits } from '../cgroups/limits.js';
import { NsboxError } from '../errors.js';
import { parseBytes } from '../size.js';
import { loadCgroup } from './cgroup.js';
import { type Json, type Obj, Reader } from './config.js';
import { parseResources } from './resources.js';
import type { Store } from './state.js';

/** runc update's flags: [flag, section, field, kind]. */
const FLAGS: [string, string, string, 'int' | 'bytes' | 'str'][] = [
  ['blkio-weight', 'blockIO', 'weight', 'int'],
  ['cpu-period', 'cpu', 'period', 'int'],
  ['cpu-quota', 'cpu', 'quota', 'int'],
  ['cpu-burst', 'cpu', 'burst', 'int'],
  ['cpu-share', 'cpu', 'shares', 'int'],
  ['cpu-rt-period', 'cpu', 'realtimePeriod', 'int'],
  ['cpu-rt-runtime', 'cpu', 'realtimeRuntime', 'int'],
  ['cpu-idle', 'cpu', 'idle', 'int'],
  ['cpuset-cpus', 'cpu', 'cpus', 'str'],
  ['cpuset-mems', 'cpu', 'mems', 'str'],
  ['memory', 'memory', 'limit', 'bytes'],
  ['memory-reservation', 'memory', 'reservation', 'bytes'],
  ['memory-swap', 'memory', 'swap', 'bytes'],
  ['kernel-memory', 'memory', 'kernel', 'bytes'],
  ['kernel-memory-tcp', 'memory', 'kernelTCP', 'bytes'],
  ['pids-limit', 'pids', 'limit', 'int'],
];

export const UPDATE_FLAGS: Record<string, 'string'> = Object.fromEntries([
  ['resources', 'string'],
  ['l3-cache-schema', 'string'],
  ['mem-bw-schema', 'string'],
  ...FLAGS.map(([f]) => [f, 'string']),
]);

function value(flag: string, v: string, kind: 'int' | 'bytes' | 'str'): Json {
  if (kind === 'str') return v;
  if (v === '-1') return -1;
  const n = kind === 'bytes' ? parseBytes(v) : /^\d+$/.test(v) ? Number(v) : null;
  if (n === null || !Number.isSafeInteger(n)) throw new NsboxError(`invalid --${flag}: ${v}`, { field: flag });
  return n;
}

export function update(store: Store, id: string, flags: Record<string, unknown>, debug: (l: string) => void): void {
  const s = store.get(id);
  if (store.status(s) === 'stopped')
    throw new NsboxError(`cannot update container "${id}": it is stopped`, { field: 'id' });
  for (const f of ['l3-cache-schema', 'mem-bw-schema'])
    if (flags[f] !== undefined) throw new NsboxError(`--${f}: Intel RDT is not supported by nsbox-runtime`);
  let res: Obj = {};
  const file = flags.resources as string | undefined;
  if (file !== undefined) {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    try {
      res = JSON.parse(text);
    } catch (e) {
      throw new NsboxError(`--resources ${file}: not JSON: ${(e as Error).message}`, { field: 'resources' });
    }
    if (res === null || typeof res !== 'object' || Array.isArray(res))
      throw new NsboxError(`--resources ${file}: must be a JSON object`, { field: 'resources' });
  }
  for (const [flag, section, field, kind] of FLAGS) {
    const v = flags[flag];
    if (typeof v !== 'string') continue;
    const o = (res[section] ?? {}) as Obj;
    o[field] = value(flag, v, kind);
    res[section] = o;
  }
  const { devices, ...limits } = parseResources(new Reader(debug), res, () => []);
  if (devices !== undefined) debug('update: linux.resources.devices: ignored (the rules are set at create)');
  if (!s.cgroup) throw new NsboxError(`cannot update container "${id}": it has no cgroup`, { field: 'id' });
  const l = resolveLimits(limits);
  const cg = loadCgroup(s.cgroup);
  // Each controller the new limits need must be one the container's cgroup has.
  for (const [hier, uses] of place(l, hierarchies())) {
    for (const c of uses.filter((c) => c !== 'cpuacct' && c !== 'freezer'))
      if (!cg.dir(c)) throw new NsboxError(`cannot update container "${id}": its cgroup has no ${c} (${hier.mount})`);
  }
  const mem = cg.dir('memory');
  const check = (res.memory as Obj | undefined)?.checkBeforeUpdate === true;
  if (check && mem && l.memoryBytes !== undefined) {
    const v2 = mem.hierarchy.version === 2;
    const used = readNumber(`${mem.path}/${v2 ? 'memory.current' : 'memory.usage_in_bytes'}`) ?? 0;
    if (used >= l.memoryBytes)
      throw new NsboxError(`cannot update container "${id}": memory in use (${used}) is above the new limit`);
  }
  cg.update(l);
}
