// linux.resources of config.json into the cgroup layer's Limits (src/cgroups), field by field as runc
// reads them: a zero or absent value leaves the kernel's default; a set value the host cannot apply
// is an error when the cgroup is made (src/cgroups/resources.ts), never skipped.
import type { Limits } from '../cgroups/limits.js';
import type { BlockIO, DeviceRate, DeviceWeight } from '../cgroups/resources.js';
import type { DeviceSpec } from '../devices/spec.js';
import type { Json, Obj, Reader } from './config.js';

const P = '$.linux.resources';
const U64 = Number.MAX_SAFE_INTEGER;

export function parseResources(
  r: Reader,
  v: Json,
  deviceRules: (r: Reader, v: Json) => DeviceSpec[],
): Limits & { devices?: DeviceSpec[] } {
  const res = r.obj(v, P, [
    'memory',
    'cpu',
    'pids',
    'devices',
    'blockIO',
    'hugepageLimits',
    'unified',
    'network',
    'rdma',
  ]);
  const l: Limits & { devices?: DeviceSpec[] } = {};
  if (res.devices !== undefined && res.devices !== null) l.devices = deviceRules(r, res.devices);
  if (res.memory !== undefined && res.memory !== null) memory(r, res.memory, l);
  if (res.cpu !== undefined && res.cpu !== null) cpu(r, res.cpu, l);
  if (res.pids !== undefined && res.pids !== null) {
    const pids = r.int(r.obj(res.pids, `${P}.pids`, ['limit']).limit, `${P}.pids.limit`, -1, U64);
    if (pids > 0) l.pids = pids;
  }
  if (res.blockIO !== undefined && res.blockIO !== null) {
    const b = blockIO(r, res.blockIO);
    if (Object.keys(b).length) l.blockIO = b;
  }
  if (res.hugepageLimits !== undefined && res.hugepageLimits !== null) {
    const list = r.arr(res.hugepageLimits, `${P}.hugepageLimits`).map((x, i) => {
      const p = `${P}.hugepageLimits[${i}]`;
      const h = r.obj(x, p, ['pageSize', 'limit']);
      return { pageSize: r.str(h.pageSize, `${p}.pageSize`), limit: r.int(h.limit, `${p}.limit`, 0, U64) };
    });
    if (list.length) l.hugepages = list;
  }
  if (res.network !== undefined && res.network !== null) {
    const n = r.obj(res.network, `${P}.network`, ['classID', 'priorities']);
    if (n.classID !== undefined && n.classID !== null)
      l.netClassId = r.int(n.classID, `${P}.network.classID`, 0, 2 ** 32 - 1);
    if (n.priorities !== undefined && n.priorities !== null) {
      const list = r.arr(n.priorities, `${P}.network.priorities`).map((x, i) => {
        const p = `${P}.network.priorities[${i}]`;
        const o = r.obj(x, p, ['name', 'priority']);
        return { name: r.str(o.name, `${p}.name`), priority: r.int(o.priority, `${p}.priority`, 0, 2 ** 32 - 1) };
      });
      if (list.length) l.netPriorities = list;
    }
  }
  if (res.rdma !== undefined && res.rdma !== null) {
    const o = r.obj(res.rdma, `${P}.rdma`, Object.keys(res.rdma as Obj));
    const out: NonNullable<Limits['rdma']> = {};
    for (const [dev, x] of Object.entries(o)) {
      const p = `${P}.rdma.${dev}`;
      const d = r.obj(x, p, ['hcaHandles', 'hcaObjects']);
      out[dev] = {};
      if (d.hcaHandles !== undefined) out[dev].hcaHandles = r.int(d.hcaHandles, `${p}.hcaHandles`, 0, 2 ** 32 - 1);
      if (d.hcaObjects !== undefined) out[dev].hcaObjects = r.int(d.hcaObjects, `${p}.hcaObjects`, 0, 2 ** 32 - 1);
    }
    if (Object.keys(out).length) l.rdma = out;
  }
  if (res.unified !== undefined && res.unified !== null) {
    const o = r.obj(res.unified, `${P}.unified`, Object.keys(res.unified as Obj));
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(o)) out[k] = r.str(x, `${P}.unified.${k}`);
    if (Object.keys(out).length) l.unified = out;
  }
  return l;
}

function memory(r: Reader, v: Json, l: Limits): void {
  const p = `${P}.memory`;
  const m = r.obj(v, p, [
    'limit',
    'swap',
    'reservation',
    'kernel',
    'kernelTCP',
    'swappiness',
    'disableOOMKiller',
    'useHierarchy',
    'checkBeforeUpdate',
  ]);
  // Deprecated in the spec; runc ignores them (kernel memory accounting is gone from Linux 6.x).
  for (const k of ['kernel', 'kernelTCP', 'useHierarchy'])
    if (m[k] !== undefined) r.debug(`config.json: ${p}.${k}: deprecated, ignored (as runc)`);
  const num = (k: string) => (m[k] === undefined || m[k] === null ? 0 : r.int(m[k], `${p}.${k}`, -1, U64));
  const limit = num('limit');
  if (limit > 0) l.memory = limit;
  const swap = num('swap');
  if (swap === -1 || swap > 0) {
    if (l.memory === undefined) r.fail(`${p}.swap`, 'a swap limit needs memory.limit too (as runc)');
    if (swap !== -1 && swap < limit) r.fail(`${p}.swap`, 'memory+swap must be at least memory.limit');
    l.memorySwap = swap;
  }
  const reservation = num('reservation');
  if (reservation > 0) l.memoryReservation = reservation;
  if (m.swappiness !== undefined && m.swappiness !== null) {
    const s = r.int(m.swappiness, `${p}.swappiness`, 0, U64);
    if (s > 100) r.fail(`${p}.swappiness`, `must be from 0 to 100, got ${s}`);
    l.memorySwappiness = s;
  }
  if (m.disableOOMKiller !== undefined && m.disableOOMKiller !== null)
    if (r.bool(m.disableOOMKiller, `${p}.disableOOMKiller`)) l.oomKillDisable = true;
  if (m.checkBeforeUpdate !== undefined) r.bool(m.checkBeforeUpdate, `${p}.checkBeforeUpdate`); // update's only
}

function cpu(r: Reader, v: Json, l: Limits): void {
  const p = `${P}.cpu`;
  const c = r.obj(v, p, [
    'shares',
    'quota',
    'period',
    'cpus',
    'mems',
    'realtimeRuntime',
    'realtimePeriod',
    'idle',
    'burst',
  ]);
  const has = (k: string) => c[k] !== undefined && c[k] !== null;
  if (has('shares')) {
    const shares = r.int(c.shares, `${p}.shares`, 0, U64);
    if (shares > 0) l.cpuShares = Math.min(262144, Math.max(2, shares)); // the kernel's clamp
  }
  const quota = has('quota') ? r.int(c.quota, `${p}.quota`, -1, U64) : 0;
  const period = has('period') ? r.int(c.period, `${p}.period`, 0, U64) : 0;
  if (quota > 0) l.cpuQuota = quota;
  if (period > 0) l.cpuPeriod = period;
  if (has('cpus') && c.cpus !== '') l.cpusetCpus = r.str(c.cpus, `${p}.cpus`);
  if (has('mems') && c.mems !== '') l.cpusetMems = r.str(c.mems, `${p}.mems`);
  // Zero real-time values are runc's "leave as is".
  const rtRuntime = has('realtimeRuntime') ? r.int(c.realtimeRuntime, `${p}.realtimeRuntime`, -1, U64) : 0;
  const rtPeriod = has('realtimePeriod') ? r.int(c.realtimePeriod, `${p}.realtimePeriod`, 0, U64) : 0;
  if (rtRuntime !== 0) l.cpuRtRuntime = rtRuntime;
  if (rtPeriod !== 0) l.cpuRtPeriod = rtPeriod;
  if (has('idle')) {
    const idle = r.int(c.idle, `${p}.idle`, 0, 1);
    if (idle) l.cpuIdle = idle;
  }
  if (has('burst')) l.cpuBurst = r.int(c.burst, `${p}.burst`, 0, U64);
}

function blockIO(r: Reader, v: Json): BlockIO {
  const p = `${P}.blockIO`;
  const throttles = [
    'throttleReadBpsDevice',
    'throttleWriteBpsDevice',
    'throttleReadIOPSDevice',
    'throttleWriteIOPSDevice',
  ] as const;
  const b = r.obj(v, p, ['weight', 'leafWeight', 'weightDevice', ...throttles]);
  const out: BlockIO = {};
  const weight = (x: Json | undefined, q: string) => {
    if (x === undefined || x === null) return undefined;
    const w = r.int(x, q, 0, 1000);
    if (w !== 0 && w < 10) r.fail(q, `must be 0 or from 10 to 1000, got ${w}`);
    return w || undefined;
  };
  const dev = (o: Obj, q: string) => ({
    major: r.int(o.major, `${q}.major`, 0, 0xfff),
    minor: r.int(o.minor, `${q}.minor`, 0, 0xfffff),
  });
  const w = weight(b.weight, `${p}.weight`);
  if (w !== undefined) out.weight = w;
  const lw = weight(b.leafWeight, `${p}.leafWeight`);
  if (lw !== undefined) out.leafWeight = lw;
  if (b.weightDevice !== undefined && b.weightDevice !== null) {
    const list: DeviceWeight[] = r.arr(b.weightDevice, `${p}.weightDevice`).map((x, i) => {
      const q = `${p}.weightDevice[${i}]`;
      const o = r.obj(x, q, ['major', 'minor', 'weight', 'leafWeight']);
      const d: DeviceWeight = dev(o, q);
      const dw = weight(o.weight, `${q}.weight`);
      const dl = weight(o.leafWeight, `${q}.leafWeight`);
      if (dw !== undefined) d.weight = dw;
      if (dl !== undefined) d.leafWeight = dl;
      return d;
    });
    if (list.length) out.weightDevice = list;
  }
  for (const k of throttles) {
    if (b[k] === undefined || b[k] === null) continue;
    const list: DeviceRate[] = r.arr(b[k], `${p}.${k}`).map((x, i) => {
      const q = `${p}.${k}[${i}]`;
      const o = r.obj(x, q, ['major', 'minor', 'rate']);
      return { ...dev(o, q), rate: r.int(o.rate, `${q}.rate`, 0, U64) };
    });
    if (list.length) out[k] = list;
  }
  return out;
}
