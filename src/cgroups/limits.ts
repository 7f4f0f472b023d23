// Resource limits: what a spec may ask for, parsed strictly and checked against the host before
// anything is created.
import { readFileSync } from 'node:fs';
import { cpus as osCpus } from 'node:os';
import { NsboxError } from '../errors.js';
import { parseBytes, SIZE_HELP } from '../size.js';
import { EXTRA_KEYS, resolveExtra, type ExtraLimits } from './resources.js';

export interface Limits extends Omit<ExtraLimits, 'memoryReservation' | 'memorySwappiness'> {
  /** Soft memory limit (a size), reclaimed down to under pressure: v1 soft_limit_in_bytes, v2 memory.low. */
  memoryReservation?: number | string;
  /** 0-100, cgroup v1 only. */
  memorySwappiness?: number | string;
  /** CFS quota and period in microseconds, exactly (an OCI config's cpu.quota/period); not with `cpus`. */
  cpuQuota?: number;
  cpuPeriod?: number;
  /** Memory limit: bytes, or a size such as '64m' (units b, k, m, g, t; binary). */
  memory?: number | string;
  /** Memory plus swap, as docker: a size at least `memory`, or -1 for unlimited swap. Default: no swap. */
  memorySwap?: number | string;
  /** CPU time per wall time, e.g. 0.5 (cpu.max 50000 100000). At most the host's CPUs. */
  cpus?: number | string;
  /** Relative CPU weight in v1 units, 2-262144 (default 1024); converted on v2. */
  cpuShares?: number | string;
  /** Relative CPU weight in v2 units, 1-10000 (default 100); converted on v1. */
  cpuWeight?: number | string;
  /** CPUs the container may run on, e.g. '0-1,3'. */
  cpusetCpus?: string;
  /** Most processes and threads at once. */
  pids?: number | string;
}

export interface ResolvedLimits extends ExtraLimits {
  memoryBytes?: number;
  /** Swap allowed beyond memoryBytes: bytes, or -1 for unlimited. Set when memoryBytes is. */
  swapBytes?: number;
  /** cpu.max quota and period in microseconds. */
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  /** v1 cpu.shares and v2 cpu.weight for the same request. */
  cpuShares?: number;
  cpuWeight?: number;
  cpusetCpus?: string;
  pids?: number;
}

/** The lowest memory limit a container can start with (as docker). */
export const MIN_MEMORY = 6 * 1024 * 1024;
export const CPU_PERIOD_US = 100_000;

const DECIMAL_RE = /^(?:\d+(?:\.\d+)?|\.\d+)$/;
const INT_RE = /^\d+$/;

function fail(field: string, message: string): never {
  throw new NsboxError(message, { step: `limits.${field}` });
}

/** A size in bytes: the one size grammar (src/size.ts): 1048576, '64m', '1.5g', '512KiB'. */
export function parseSize(v: number | string, what: string, field = what): number {
  const bytes = parseBytes(v);
  if (bytes === null) {
    fail(
      field,
      typeof v === 'number'
        ? `invalid ${what}: ${v} (expected a whole number of bytes)`
        : `invalid ${what}: ${JSON.stringify(v)} (expected ${SIZE_HELP})`,
    );
  }
  return bytes;
}

function parseNumber(v: number | string, re: RegExp, what: string, field: string, expected: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && re.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || (re === INT_RE && !Number.isInteger(n))) {
    fail(field, `invalid ${what}: ${JSON.stringify(v)} (expected ${expected})`);
  }
  return n;
}

/** CPUs online on the host, from /sys/devices/system/cpu/online ('0-1,4'). */
export function onlineCpus(): Set<number> {
  try {
    return parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8').trim()) ?? new Set();
  } catch {
    return new Set(osCpus().map((_, i) => i));
  }
}

/** '0-2,5' -> {0, 1, 2, 5}; undefined when malformed. */
export function parseCpuList(s: string): Set<number> | undefined {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(s)) return undefined;
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const [a, b = a] = part.split('-').map(Number);
    if (b < a || b > 4095) return undefined;
    for (let i = a; i <= b; i++) out.add(i);
  }
  return out;
}

/** v1 cpu.shares to v2 cpu.weight, as runc and crun convert. */
export const sharesToWeight = (s: number) => Math.floor(1 + ((s - 2) * 9999) / 262142);
export const weightToShares = (w: number) => Math.round(2 + ((w - 1) * 262142) / 9999);

export function resolveLimits(l: Limits | undefined): ResolvedLimits {
  const r: ResolvedLimits = {};
  if (l === undefined) return r;
  if (l === null || typeof l !== 'object') fail('limits', 'limits must be an object');
  const known = new Set<string>([
    'memory',
    'memorySwap',
    'cpus',
    'cpuShares',
    'cpuWeight',
    'cpusetCpus',
    'pids',
    'cpuQuota',
    'cpuPeriod',
    ...EXTRA_KEYS,
  ]);
  for (const k of Object.keys(l)) if (!known.has(k)) fail(k, `unknown limit: ${k}`);

  if (l.memory !== undefined) {
    const bytes = parseSize(l.memory, 'memory limit', 'memory');
    if (bytes < MIN_MEMORY)
      fail('memory', `memory limit too low: ${l.memory} (a container needs at least 6m to start)`);
    r.memoryBytes = bytes;
    r.swapBytes = 0;
  }
  if (l.memorySwap !== undefined) {
    if (r.memoryBytes === undefined) fail('memorySwap', 'a memory+swap limit needs a memory limit too');
    if (l.memorySwap === -1 || l.memorySwap === '-1') r.swapBytes = -1;
    else {
      const total = parseSize(l.memorySwap, 'memory+swap limit', 'memorySwap');
      if (total < r.memoryBytes)
        fail('memorySwap', `memory+swap limit ${l.memorySwap} is below the memory limit ${l.memory}`);
      r.swapBytes = total - r.memoryBytes;
    }
  }
  if (l.cpus !== undefined) {
    const n = parseNumber(l.cpus, DECIMAL_RE, 'CPU count', 'cpus', 'a number of CPUs such as 0.5');
    const host = onlineCpus().size;
    if (n < 0.01) fail('cpus', `CPU count must be at least 0.01: ${l.cpus}`);
    if (host > 0 && n > host) fail('cpus', `CPU count ${l.cpus} is more than the host has (${host})`);
    r.cpuPeriodUs = CPU_PERIOD_US;
    r.cpuQuotaUs = Math.round(n * CPU_PERIOD_US);
  }
  if (l.cpuQuota !== undefined || l.cpuPeriod !== undefined) {
    if (l.cpus !== undefined) fail('cpuQuota', 'give a CPU count or a CPU quota and period, not both');
    if (l.cpuPeriod !== undefined) {
      if (!Number.isInteger(l.cpuPeriod) || l.cpuPeriod < 1000 || l.cpuPeriod > 1_000_000)
        fail('cpuPeriod', `CPU period must be from 1000 to 1000000 microseconds: ${l.cpuPeriod}`);
      r.cpuPeriodUs = l.cpuPeriod;
    }
    if (l.cpuQuota !== undefined) {
      if (!Number.isInteger(l.cpuQuota) || l.cpuQuota < 1000)
        fail('cpuQuota', `CPU quota must be at least 1000 microseconds: ${l.cpuQuota}`);
      r.cpuQuotaUs = l.cpuQuota;
    }
  }
  if (l.cpuShares !== undefined && l.cpuWeight !== undefined)
    fail('cpuShares', 'give CPU shares or a CPU weight, not both');
  if (l.cpuShares !== undefined) {
    const n = parseNumber(l.cpuShares, INT_RE, 'CPU shares', 'cpuShares', 'a whole number from 2 to 262144');
    if (n < 2 || n > 262144) fail('cpuShares', `CPU shares must be from 2 to 262144: ${l.cpuShares}`);
    r.cpuShares = n;
    r.cpuWeight = sharesToWeight(n);
  }
  if (l.cpuWeight !== undefined) {
    const n = parseNumber(l.cpuWeight, INT_RE, 'CPU weight', 'cpuWeight', 'a whole number from 1 to 10000');
    if (n < 1 || n > 10000) fail('cpuWeight', `CPU weight must be from 1 to 10000: ${l.cpuWeight}`);
    r.cpuWeight = n;
    r.cpuShares = weightToShares(n);
  }
  if (l.cpusetCpus !== undefined) {
    const set = typeof l.cpusetCpus === 'string' ? parseCpuList(l.cpusetCpus) : undefined;
    if (!set) fail('cpusetCpus', `invalid CPU list: ${JSON.stringify(l.cpusetCpus)} (expected e.g. 0-1,3)`);
    const online = onlineCpus();
    const missing = [...set].filter((c) => !online.has(c));
    if (missing.length)
      fail('cpusetCpus', `CPU ${missing.join(', ')} is not online on this host (online: ${[...online].join(',')})`);
    r.cpusetCpus = l.cpusetCpus;
  }
  if (l.pids !== undefined) {
    const n = parseNumber(l.pids, INT_RE, 'pids limit', 'pids', 'a whole number of at least 1');
    if (n < 1 || n > 4194304) fail('pids', `pids limit must be from 1 to 4194304: ${l.pids}`);
    r.pids = n;
  }
  const extra: ExtraLimits = {};
  for (const k of EXTRA_KEYS) if (l[k] !== undefined) Object.assign(extra, { [k]: l[k] });
  if (typeof l.memoryReservation === 'string')
    extra.memoryReservation = parseSize(l.memoryReservation, 'memory reservation', 'memoryReservation');
  if (typeof l.memorySwappiness === 'string') {
    const what = 'memory swappiness';
    extra.memorySwappiness = parseNumber(l.memorySwappiness, INT_RE, what, 'memorySwappiness', 'a number 0-100');
  }
  if (extra.memorySwappiness === -1) delete extra.memorySwappiness; // podman's "unset"
  Object.assign(r, resolveExtra(extra));
  return r;
}

export const hasLimits = (r: ResolvedLimits) => Object.keys(r).length > 0;

/** 33554432 -> '32 MiB'. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}
