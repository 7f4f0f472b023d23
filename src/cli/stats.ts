// `nsbox stats [--no-stream] [--format json] [NAME...]`: CPU, memory and pids of running
// containers, from their cgroups, refreshed every second.
import { readFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { table } from './ps.js';
import { safeJson } from './escape.js';
import { Cgroup, PARENT, type CgroupDir } from '../cgroups/cgroup.js';
import { cgroupDirs } from '../exec/cgroup.js';
import { CLK_TCK, descendants, nsId, procStat, processesIn } from '../state/proc.js';
import { containerAlive, find, list, type ContainerState } from '../state/store.js';

const STATS_HELP = `Usage: nsbox stats [--no-stream] [--format table|json] [NAME|ID...]

Live CPU, memory and pids of running containers (all of them when none is named), read from
their cgroups and refreshed every second until interrupted.
      --no-stream   print one sample (CPU taken over one second) and exit
      --format F    table (default) or json (one JSON array per sample)`;

export interface Sample {
  id: string;
  name: string;
  /** Total CPU time used so far, in microseconds. */
  cpuUs: number;
  memoryBytes: number;
  memoryLimitBytes: number | null;
  pids: number;
}

function memoryLimit(dirs: CgroupDir[]): number | null {
  const mem = dirs.find((d) => d.uses.includes('memory'));
  if (!mem) return null;
  try {
    const v = readFileSync(
      `${mem.path}/${mem.hierarchy.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'}`,
      'utf8',
    ).trim();
    const n = Number(v);
    return v === 'max' || !Number.isFinite(n) || n >= 2 ** 60 ? null : n;
  } catch {
    return null;
  }
}

/** Its own cgroup (under nsbox's parent, with memory) counts everything in it; else its processes, from /proc. */
export function sample(st: ContainerState): Sample | null {
  if (!containerAlive(st)) return null;
  const own = cgroupDirs(st.pid).filter((d) => d.path.includes(`/${PARENT}/`));
  if (own.some((d) => d.uses.includes('memory'))) {
    const u = new Cgroup(st.id, own).usage();
    return {
      id: st.id,
      name: st.name,
      cpuUs: u.cpuUserUs + u.cpuSystemUs,
      memoryBytes: u.memoryBytes,
      memoryLimitBytes: memoryLimit(own),
      pids: u.pids,
    };
  }
  const pidns = nsId(st.pid, 'pid');
  const pids = pidns && pidns !== nsId('self', 'pid') ? processesIn('pid', pidns) : descendants(st.pid);
  let ticks = 0,
    pages = 0;
  for (const p of pids) {
    const s = procStat(p);
    if (s) {
      ticks += s.utime + s.stime;
      pages += s.rssPages;
    }
  }
  return {
    id: st.id,
    name: st.name,
    cpuUs: (ticks * 1e6) / CLK_TCK,
    memoryBytes: pages * 4096,
    memoryLimitBytes: null,
    pids: pids.length,
  };
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)}${units[i]}`;
}

function render(rows: { s: Sample; cpu: number }[], json: boolean): string {
  if (json) {
    return `${safeJson(
      rows.map(({ s, cpu }) => ({
        id: s.id,
        name: s.name,
        cpuPercent: Number(cpu.toFixed(2)),
        cpuUs: s.cpuUs,
        memoryBytes: s.memoryBytes,
        memoryLimitBytes: s.memoryLimitBytes,
        pids: s.pids,
      })),
    )}\n`;
  }
  const t = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS']];
  for (const { s, cpu } of rows) {
    const lim = s.memoryLimitBytes;
    t.push([
      s.id,
      s.name,
      `${cpu.toFixed(2)}%`,
      `${bytes(s.memoryBytes)} / ${lim === null ? '-' : bytes(lim)}`,
      lim ? `${((100 * s.memoryBytes) / lim).toFixed(2)}%` : '-',
      String(s.pids),
    ]);
  }
  return table(t);
}

export async function command(_name: string, argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [{ long: 'no-stream' }, { long: 'format', value: 'single' }, { long: 'help', short: 'h' }],
    Infinity,
  );
  if (o.help) {
    process.stdout.write(`${STATS_HELP}\n`);
    return 0;
  }
  const format = (o.format as string | undefined) ?? 'table';
  if (format !== 'table' && format !== 'json') throw new NsboxError(`invalid --format: ${format} (table or json)`);
  const named = positionals.map((ref) => find(ref));
  for (const st of named) if (!containerAlive(st)) throw new NsboxError(`container ${st.name} is not running`);
  const pick = () => (named.length ? named : list().filter(containerAlive));
  let prev = new Map<string, { cpuUs: number; at: number }>();
  const take = () => {
    const now = performance.now();
    const rows: { s: Sample; cpu: number }[] = [];
    const next = new Map<string, { cpuUs: number; at: number }>();
    for (const st of pick()) {
      const s = sample(st);
      if (!s) continue;
      const p = prev.get(s.id);
      const cpu = p ? (100 * (s.cpuUs - p.cpuUs)) / ((now - p.at) * 1000) : 0;
      rows.push({ s, cpu: Math.max(0, cpu) });
      next.set(s.id, { cpuUs: s.cpuUs, at: now });
    }
    prev = next;
    return rows;
  };
  take();
  await new Promise((r) => setTimeout(r, 1000));
  for (;;) {
    const rows = take();
    const text = render(rows, format === 'json');
    if (o['no-stream']) {
      process.stdout.write(text);
      return 0;
    }
    process.stdout.write(process.stdout.isTTY && format === 'table' ? `\x1b[2J\x1b[H${text}` : text);
    if (named.length && rows.length === 0) return 0;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
