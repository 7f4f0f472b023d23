// The CLI's quota options (`run --memory 64m --cpus 0.5 ...`) and its out-of-memory report.
import { NsboxError } from '../errors.js';
import type { ExitStatus } from '../plan/part.js';
import type { OptionDef, Parsed } from '../cli/args.js';
import { formatBytes, resolveLimits, type Limits } from './limits.js';

export const LIMIT_OPTIONS: OptionDef[] = [
  { long: 'memory', short: 'm', value: 'single' },
  { long: 'memory-swap', value: 'single' },
  { long: 'cpus', value: 'single' },
  { long: 'cpu-shares', value: 'single' },
  { long: 'cpu-weight', value: 'single' },
  { long: 'cpuset-cpus', value: 'single' },
  { long: 'cpuset-mems', value: 'single' },
  { long: 'memory-reservation', value: 'single' },
  { long: 'memory-swappiness', value: 'single' },
  { long: 'blkio-weight', value: 'single' },
  { long: 'pids-limit', value: 'single' },
  { long: 'debug' },
];

export const LIMIT_HELP = `  -m, --memory SIZE      memory limit, e.g. 64m (units b, k, m, g, t; at least 6m)
      --memory-swap SIZE memory plus swap (default: no swap; -1: unlimited swap)
      --cpus N           CPU time per wall time, e.g. 0.5 (at most the host's CPUs)
      --cpu-shares N     relative CPU weight, 2-262144 (default 1024)
      --cpu-weight N     relative CPU weight in cgroup v2 units, 1-10000 (default 100)
      --cpuset-cpus LIST CPUs to run on, e.g. 0-1,3
      --cpuset-mems LIST memory nodes to allocate on, e.g. 0
      --memory-reservation SIZE  soft memory limit, reclaimed down to under pressure
      --memory-swappiness N  0-100 (cgroup v1 only)
      --blkio-weight N   relative block I/O weight, 10-1000
      --pids-limit N     most processes and threads at once
      --debug            say which cgroup hierarchy and directories are used`;

const FIELDS: [string, keyof Limits][] = [
  ['memory', 'memory'],
  ['memory-swap', 'memorySwap'],
  ['cpus', 'cpus'],
  ['cpu-shares', 'cpuShares'],
  ['cpu-weight', 'cpuWeight'],
  ['cpuset-cpus', 'cpusetCpus'],
  ['cpuset-mems', 'cpusetMems'],
  ['memory-reservation', 'memoryReservation'],
  ['memory-swappiness', 'memorySwappiness'],
  ['pids-limit', 'pids'],
];

/** The limits the options ask for (undefined: none), checked now so bad values fail before anything is made. */
export function limitsFromOptions(o: Parsed['options']): Limits | undefined {
  const l: Record<string, unknown> = {};
  for (const [opt, field] of FIELDS) if (typeof o[opt] === 'string') l[field] = o[opt] as string;
  const weight = o['blkio-weight'];
  if (typeof weight === 'string') {
    if (!/^\d+$/.test(weight)) throw new NsboxError(`invalid block I/O weight: ${weight} (expected 10-1000)`);
    l.blockIO = { weight: Number(weight) };
  }
  if (Object.keys(l).length === 0) return undefined;
  resolveLimits(l as Limits);
  return l as Limits;
}

/** Says that the OOM killer struck; returns the exit status (137 when PID 1 was its victim). */
export function reportOom(st: ExitStatus, limits: Limits | undefined): number {
  const bytes = limits?.memory === undefined ? undefined : resolveLimits({ memory: limits.memory }).memoryBytes;
  const limit = bytes === undefined ? '' : ` (limit ${formatBytes(bytes)})`;
  if (st.signal === 'SIGKILL') {
    process.stderr.write(`nsbox: container killed: out of memory${limit}\n`);
    return 137;
  }
  process.stderr.write(`nsbox: out of memory: a process in the container was killed${limit}\n`);
  return st.status;
}
