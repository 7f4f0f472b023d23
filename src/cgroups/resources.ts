// The less common cgroup resources (an OCI config's linux.resources beyond memory, CPU time and pids):
// checked strictly, mapped to the files runc writes on v1 and v2. Where the host lacks the file a set
// value needs, that is an error naming it: a limit that cannot be applied is never skipped.
import { existsSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { NsboxError } from '../errors.js';
import { readFile, writeFile } from './files.js';
import type { Controller } from './hierarchy.js';

export interface DeviceRate {
  major: number;
  minor: number;
  rate: number;
}
export interface DeviceWeight {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}
export interface BlockIO {
  /** 10-1000 (v1 blkio units; converted for v2 io.weight). */
  weight?: number;
  /** v1 only (CFQ); cgroup v2 has no equivalent and runc ignores it there. */
  leafWeight?: number;
  weightDevice?: DeviceWeight[];
  throttleReadBpsDevice?: DeviceRate[];
  throttleWriteBpsDevice?: DeviceRate[];
  throttleReadIOPSDevice?: DeviceRate[];
  throttleWriteIOPSDevice?: DeviceRate[];
}

/** The resources beyond Limits' basic ones, already in numbers (the OCI config's units). */
export interface ExtraLimits {
  /** Bytes: v1 memory.soft_limit_in_bytes, v2 memory.low. */
  memoryReservation?: number;
  /** 0-100, v1 memory.swappiness (v2 has none: an error there, as runc). */
  memorySwappiness?: number;
  /** v1 memory.oom_control (v2 cannot: an error there). */
  oomKillDisable?: boolean;
  cpusetMems?: string;
  /** v1 cpu.rt_runtime_us / cpu.rt_period_us (real-time group scheduling). */
  cpuRtRuntime?: number;
  cpuRtPeriod?: number;
  /** cpu.idle (v2, and v1 kernels that have the file). */
  cpuIdle?: number;
  /** Microseconds: v1 cpu.cfs_burst_us, v2 cpu.max.burst. */
  cpuBurst?: number;
  blockIO?: BlockIO;
  /** pageSize as the kernel names it ('2MB', '1GB'), limit in bytes. */
  hugepages?: { pageSize: string; limit: number }[];
  netClassId?: number;
  netPriorities?: { name: string; priority: number }[];
  rdma?: Record<string, { hcaHandles?: number; hcaObjects?: number }>;
  /** v2 files of the container's cgroup: name -> content. */
  unified?: Record<string, string>;
}

export const EXTRA_KEYS: (keyof ExtraLimits)[] = [
  'memoryReservation',
  'memorySwappiness',
  'oomKillDisable',
  'cpusetMems',
  'cpuRtRuntime',
  'cpuRtPeriod',
  'cpuIdle',
  'cpuBurst',
  'blockIO',
  'hugepages',
  'netClassId',
  'netPriorities',
  'rdma',
  'unified',
];

function fail(field: string, message: string): never {
  throw new NsboxError(message, { step: `limits.${field}` });
}

const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function int(v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!isInt(v, min, max))
    fail(field, `invalid ${field}: ${JSON.stringify(v)} (expected a whole number ${min}-${max})`);
  return v;
}

/** Huge page sizes the kernel has, as cgroup file names spell them: 2048kB -> '2MB'. */
export function hugePageSizes(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync('/sys/kernel/mm/hugepages');
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = /^hugepages-(\d+)kB$/.exec(n);
    if (!m) return [];
    let kb = Number(m[1]);
    for (const unit of ['KB', 'MB', 'GB']) {
      if (kb < 1024 || kb % 1024 !== 0 || unit === 'GB') return [`${kb}${unit}`];
      kb /= 1024;
    }
    return [];
  });
}

const UNIFIED_KEY = /^([a-z_]+)\.[a-z0-9_.]+$/;

/** Checks each extra; returns them (numbers as given) for ResolvedLimits. */
export function resolveExtra(l: ExtraLimits): ExtraLimits {
  const r: ExtraLimits = {};
  if (l.memoryReservation !== undefined) r.memoryReservation = int(l.memoryReservation, 'memoryReservation', 0);
  if (l.memorySwappiness !== undefined) r.memorySwappiness = int(l.memorySwappiness, 'memorySwappiness', 0, 100);
  if (l.oomKillDisable !== undefined) {
    if (typeof l.oomKillDisable !== 'boolean') fail('oomKillDisable', 'oomKillDisable must be true or false');
    if (l.oomKillDisable) r.oomKillDisable = true;
  }
  if (l.cpusetMems !== undefined) {
    if (typeof l.cpusetMems !== 'string' || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(l.cpusetMems))
      fail('cpusetMems', `invalid memory node list: ${JSON.stringify(l.cpusetMems)} (expected e.g. 0-1,3)`);
    r.cpusetMems = l.cpusetMems;
  }
  if (l.cpuRtRuntime !== undefined) r.cpuRtRuntime = int(l.cpuRtRuntime, 'cpuRtRuntime', -1);
  if (l.cpuRtPeriod !== undefined) r.cpuRtPeriod = int(l.cpuRtPeriod, 'cpuRtPeriod', 1);
  if (l.cpuIdle !== undefined) r.cpuIdle = int(l.cpuIdle, 'cpuIdle', 0, 1);
  if (l.cpuBurst !== undefined) r.cpuBurst = int(l.cpuBurst, 'cpuBurst', 0);
  if (l.blockIO !== undefined) r.blockIO = resolveBlockIO(l.blockIO);
  if (l.hugepages !== undefined) {
    const sizes = hugePageSizes();
    r.hugepages = (Array.isArray(l.hugepages) ? l.hugepages : fail('hugepages', 'hugepages must be a list')).map(
      (h, i) => {
        if (typeof h?.pageSize !== 'string' || !/^\d+[KMG]B$/.test(h.pageSize))
          fail('hugepages', `invalid huge page size: ${JSON.stringify(h?.pageSize)} (expected e.g. 2MB)`);
        if (!sizes.includes(h.pageSize))
          fail('hugepages', `huge page size ${h.pageSize} is not one this host has (${sizes.join(', ') || 'none'})`);
        return { pageSize: h.pageSize, limit: int(h.limit, `hugepages[${i}].limit`, 0) };
      },
    );
  }
  if (l.netClassId !== undefined) r.netClassId = int(l.netClassId, 'netClassId', 0, 0xffffffff);
  if (l.netPriorities !== undefined) {
    r.netPriorities = (l.netPriorities ?? []).map((p, i) => {
      if (typeof p?.name !== 'string' || !/^[^\s/]{1,15}$/.test(p.name))
        fail('netPriorities', `invalid interface name: ${JSON.stringify(p?.name)}`);
      return { name: p.name, priority: int(p.priority, `netPriorities[${i}].priority`, 0, 0xffffffff) };
    });
  }
  if (l.rdma !== undefined) {
    r.rdma = {};
    for (const [dev, v] of Object.entries(l.rdma)) {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(dev)) fail('rdma', `invalid RDMA device name: ${JSON.stringify(dev)}`);
      const o: { hcaHandles?: number; hcaObjects?: number } = {};
      if (v?.hcaHandles !== undefined) o.hcaHandles = int(v.hcaHandles, `rdma.${dev}.hcaHandles`, 0, 0xffffffff);
      if (v?.hcaObjects !== undefined) o.hcaObjects = int(v.hcaObjects, `rdma.${dev}.hcaObjects`, 0, 0xffffffff);
      r.rdma[dev] = o;
    }
  }
  if (l.unified !== undefined) {
    r.unified = {};
    for (const [k, v] of Object.entries(l.unified)) {
      // Only a controller's own files: no path, and no cgroup.* core file (procs, subtree_control, kill).
      const m = UNIFIED_KEY.exec(k);
      if (!m || k.includes('..') || m[1] === 'cgroup')
        fail('unified', `unified key ${JSON.stringify(k)} is not a file of a cgroup controller (CONTROLLER.FILE)`);
      if (typeof v !== 'string' || v.includes('\0')) fail('unified', `unified value of ${k} must be a string`);
      r.unified[k] = v;
    }
  }
  return r;
}

function resolveBlockIO(b: BlockIO): BlockIO {
  const r: BlockIO = {};
  if (b.weight !== undefined) r.weight = int(b.weight, 'blockIO.weight', 10, 1000);
  if (b.leafWeight !== undefined) r.leafWeight = int(b.leafWeight, 'blockIO.leafWeight', 10, 1000);
  const dev = (d: { major: number; minor: number }, f: string) => {
    int(d?.major, `${f}.major`, 0, 0xfff);
    int(d?.minor, `${f}.minor`, 0, 0xfffff);
  };
  if (b.weightDevice?.length) {
    r.weightDevice = b.weightDevice.map((d, i) => {
      const f = `blockIO.weightDevice[${i}]`;
      dev(d, f);
      const o: DeviceWeight = { major: d.major, minor: d.minor };
      if (d.weight !== undefined) o.weight = int(d.weight, `${f}.weight`, 10, 1000);
      if (d.leafWeight !== undefined) o.leafWeight = int(d.leafWeight, `${f}.leafWeight`, 10, 1000);
      return o;
    });
  }
  for (const k of THROTTLES) {
    if (!b[k]?.length) continue;
    r[k] = b[k].map((d, i) => {
      dev(d, `blockIO.${k}[${i}]`);
      return { major: d.major, minor: d.minor, rate: int(d.rate, `blockIO.${k}[${i}].rate`, 0) };
    });
  }
  return r;
}

const THROTTLES = [
  'throttleReadBpsDevice',
  'throttleWriteBpsDevice',
  'throttleReadIOPSDevice',
  'throttleWriteIOPSDevice',
] as const;
const V1_THROTTLE = ['read_bps_device', 'write_bps_device', 'read_iops_device', 'write_iops_device'];
const V2_THROTTLE = ['rbps', 'wbps', 'riops', 'wiops'];

const hasBlockIO = (b: BlockIO | undefined) => !!b && Object.keys(b).length > 0;

/** The controllers these extras need, each with words for the error when the host lacks it. */
export function extraControllers(l: ExtraLimits): [Controller, string][] {
  const out: [Controller, string][] = [];
  if (l.memoryReservation !== undefined || l.memorySwappiness !== undefined || l.oomKillDisable !== undefined)
    out.push(['memory', 'memory']);
  if ([l.cpuRtRuntime, l.cpuRtPeriod, l.cpuIdle, l.cpuBurst].some((x) => x !== undefined))
    out.push(['cpu', 'CPU time']);
  if (l.cpusetMems !== undefined) out.push(['cpuset', 'memory nodes']);
  if (hasBlockIO(l.blockIO)) out.push(['io', 'block I/O (blockIO)']);
  if (l.hugepages?.length) out.push(['hugetlb', 'huge pages (hugepageLimits)']);
  if (l.netClassId !== undefined) out.push(['net_cls', 'the network class (network.classID)']);
  if (l.netPriorities?.length) out.push(['net_prio', 'network priorities (network.priorities)']);
  if (l.rdma && Object.keys(l.rdma).length) out.push(['rdma', 'RDMA (rdma)']);
  return out;
}

interface Dir {
  path: string;
  v2: boolean;
  uses: string[];
}

/** `file` must exist: a set value whose file the host lacks is an error naming both. */
function need(d: Dir, file: string, field: string, why = ''): string {
  const path = `${d.path}/${file}`;
  if (!existsSync(path)) {
    throw new NsboxError(`cannot apply ${field}: this host has no ${file}${why ? ` (${why})` : ''}`, {
      step: 'cgroup',
    });
  }
  return path;
}

/** Writes the extras that belong to this directory's controllers. */
export function writeExtra(d: Dir, l: ExtraLimits): void {
  const w = (file: string, value: string | number, field: string, why?: string) =>
    writeFile(need(d, file, field, why), String(value), `cannot apply ${field}`);
  if (d.uses.includes('memory')) {
    if (l.memoryReservation !== undefined)
      w(d.v2 ? 'memory.low' : 'memory.soft_limit_in_bytes', l.memoryReservation, 'memory.reservation');
    if (l.memorySwappiness !== undefined) {
      if (d.v2) fail('memorySwappiness', 'cannot apply memory.swappiness: cgroup v2 has no swappiness per cgroup');
      w('memory.swappiness', l.memorySwappiness, 'memory.swappiness');
    }
    if (l.oomKillDisable) {
      if (d.v2) fail('oomKillDisable', 'cannot apply memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer');
      w('memory.oom_control', 1, 'memory.disableOOMKiller');
    }
  }
  if (d.uses.includes('cpu')) {
    // Period before runtime: a runtime above the current period is refused.
    const rt = 'needs a kernel with CONFIG_RT_GROUP_SCHED and cgroup v1';
    if (l.cpuRtPeriod !== undefined) w('cpu.rt_period_us', l.cpuRtPeriod, 'cpu.realtimePeriod', rt);
    if (l.cpuRtRuntime !== undefined) {
      try {
        w('cpu.rt_runtime_us', l.cpuRtRuntime, 'cpu.realtimeRuntime', rt);
      } catch (e) {
        if ((e as NsboxError).code !== 'EINVAL') throw e;
        // Real-time time is handed down: children together get at most their parent's cpu.rt_runtime_us.
        const left = readFile(`${dirname(d.path)}/cpu.rt_runtime_us`)?.trim();
        throw new NsboxError(`${(e as Error).message} (the parent cgroup's cpu.rt_runtime_us is ${left})`, {
          code: 'EINVAL',
          step: 'cgroup',
        });
      }
    }
    if (l.cpuBurst !== undefined) w(d.v2 ? 'cpu.max.burst' : 'cpu.cfs_burst_us', l.cpuBurst, 'cpu.burst');
    if (l.cpuIdle !== undefined) w('cpu.idle', l.cpuIdle, 'cpu.idle', 'needs Linux 5.15');
  }
  if (d.uses.includes('cpuset') && l.cpusetMems !== undefined && d.v2) w('cpuset.mems', l.cpusetMems, 'cpu.mems');
  if (d.uses.includes('io') && l.blockIO) writeBlockIO(d, l.blockIO, w);
  if (d.uses.includes('hugetlb')) {
    for (const h of l.hugepages ?? []) {
      const [limit, rsvd] = d.v2
        ? [`hugetlb.${h.pageSize}.max`, `hugetlb.${h.pageSize}.rsvd.max`]
        : [`hugetlb.${h.pageSize}.limit_in_bytes`, `hugetlb.${h.pageSize}.rsvd.limit_in_bytes`];
      w(limit, h.limit, `hugepageLimits ${h.pageSize}`);
      // Reservations too where the kernel counts them (as runc), so a mapping cannot reserve past it.
      if (existsSync(`${d.path}/${rsvd}`)) w(rsvd, h.limit, `hugepageLimits ${h.pageSize}`);
    }
  }
  if (d.uses.includes('net_cls') && l.netClassId !== undefined) w('net_cls.classid', l.netClassId, 'network.classID');
  if (d.uses.includes('net_prio'))
    for (const p of l.netPriorities ?? []) w('net_prio.ifpriomap', `${p.name} ${p.priority}`, 'network.priorities');
  if (d.uses.includes('rdma')) {
    for (const [dev, v] of Object.entries(l.rdma ?? {})) {
      const parts = [dev];
      if (v.hcaHandles !== undefined) parts.push(`hca_handle=${v.hcaHandles}`);
      if (v.hcaObjects !== undefined) parts.push(`hca_object=${v.hcaObjects}`);
      if (parts.length > 1) w('rdma.max', parts.join(' '), `rdma.${dev}`);
    }
  }
}

type Writer = (file: string, value: string | number, field: string, why?: string) => void;

function writeBlockIO(d: Dir, b: BlockIO, w: Writer): void {
  const sched = 'no I/O scheduler with weights (bfq) on this kernel';
  if (d.v2) {
    // As runc: BFQ's own weight where it is there, else io.weight (iocost) in its 1-10000 units.
    const bfq = existsSync(`${d.path}/io.bfq.weight`);
    if (b.weight !== undefined) {
      if (bfq) w('io.bfq.weight', b.weight, 'blockIO.weight');
      else w('io.weight', 1 + Math.floor(((b.weight - 10) * 9999) / 990), 'blockIO.weight', sched);
    }
    for (const x of b.weightDevice ?? []) {
      if (x.weight === undefined) continue;
      const v = bfq ? x.weight : 1 + Math.floor(((x.weight - 10) * 9999) / 990);
      w(bfq ? 'io.bfq.weight' : 'io.weight', `${x.major}:${x.minor} ${v}`, 'blockIO.weightDevice', sched);
    }
    THROTTLES.forEach((k, i) => {
      for (const x of b[k] ?? []) w('io.max', `${x.major}:${x.minor} ${V2_THROTTLE[i]}=${x.rate}`, `blockIO.${k}`);
    });
    return;
  }
  const bfq = existsSync(`${d.path}/blkio.bfq.weight`);
  const [weight, weightDevice] = bfq
    ? ['blkio.bfq.weight', 'blkio.bfq.weight_device']
    : ['blkio.weight', 'blkio.weight_device'];
  if (b.weight !== undefined) w(weight, b.weight, 'blockIO.weight', sched);
  if (b.leafWeight !== undefined) w('blkio.leaf_weight', b.leafWeight, 'blockIO.leafWeight', 'needs the CFQ scheduler');
  for (const x of b.weightDevice ?? []) {
    if (x.weight !== undefined) w(weightDevice, `${x.major}:${x.minor} ${x.weight}`, 'blockIO.weightDevice', sched);
    if (x.leafWeight !== undefined)
      w('blkio.leaf_weight_device', `${x.major}:${x.minor} ${x.leafWeight}`, 'blockIO.weightDevice', 'needs CFQ');
  }
  THROTTLES.forEach((k, i) => {
    for (const x of b[k] ?? [])
      w(`blkio.throttle.${V1_THROTTLE[i]}`, `${x.major}:${x.minor} ${x.rate}`, `blockIO.${k}`);
  });
}

/** unified keys on v2: each a file of a controller enabled in the container's directory, written last
 *  (as runc, so they override the fields above). */
export function writeUnified(d: Dir, unified: Record<string, string>): void {
  const available = (readFile(`${d.path}/cgroup.controllers`) ?? '').trim().split(/\s+/);
  for (const [k, v] of Object.entries(unified)) {
    const c = k.split('.')[0];
    if (!available.includes(c))
      fail('unified', `cannot apply unified ${k}: the ${c} controller is not enabled in ${d.path}`);
    const file = need(d, k, `unified ${k}`, `not a file of the ${c} controller`);
    // One write per line, as runc: files such as io.max take one device per write.
    for (const line of v.split('\n').filter((x) => x.trim() !== '')) writeFile(file, line, `cannot apply unified ${k}`);
  }
}

/** The v2 controllers named by unified keys. */
export const unifiedControllers = (u: Record<string, string> | undefined): string[] => [
  ...new Set(Object.keys(u ?? {}).map((k) => k.split('.')[0])),
];
