// `nsbox stats [--no-stream] [--format json] [NAME...]`: CPU, memory and pids of running
// containers, from their cgroups, refreshed every second. The first sample's CPU % is the average since
// the container started (as podman's), so --no-stream answers at once instead of after a second.
import { readdirSync, readFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { table } from './ps.js';
import { safeJson } from './escape.js';
import { writeOut } from './out.js';
import { Cgroup, PARENT, type CgroupDir } from '../cgroups/cgroup.js';
import { cgroupDirs } from '../exec/cgroup.js';
import { CLK_TCK, descendants, nsId, procStat, uptime } from '../state/proc.js';
import { containerAlive, find, list, type ContainerState } from '../state/store.js';

const STATS_HELP = `Usage: nsbox stats [--no-stream] [--format table|json] [NAME|ID...]

Live CPU, memory and pids of running containers (all of them when none is named), read from
their cgroups and refreshed every second until interrupted. The first sample's CPU % is the
average since the container started; the next ones are over the last second.
      --no-stream   print one sample and exit
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

/**
 * Host pids by PID namespace, from one pass over /proc: a round of samples of many containers
 * without a cgroup of their own reads /proc once, not once per container.
 */
export class PidIndex {
  private byNs: Map<string, number[]> | null = null;
  in(ns: string): number[] {
    if (!this.byNs) {
      this.byNs = new Map();
      for (const e of readdirSync('/proc')) {
        if (e.charCodeAt(0) > 57) continue;
        const id = nsId(Number(e), 'pid');
        if (id) (this.byNs.get(id) ?? this.byNs.set(id, []).get(id)!).push(Number(e));
      }
    }
    return this.byNs.get(ns) ?? [];
  }
}

/** Its own cgroup (under nsbox's parent, with memory) counts everything in it; else its processes, from /proc. */
export function sample(st: ContainerState, index = new PidIndex()): Sample | null {
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
  const pids = pidns && pidns !== nsId('self', 'pid') ? index.in(pidns) : descendants(st.pid);
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
    const index = new PidIndex();
    let up: number | undefined;
    for (const st of pick()) {
      const s = sample(st, index);
      if (!s) continue;
      const p = prev.get(s.id);
      let cpu: number;
      if (p) cpu = (100 * (s.cpuUs - p.cpuUs)) / ((now - p.at) * 1000);
      else {
        // The first sample: the average since PID 1 started.
        up ??= uptime();
        const secs = up - st.pidStart / CLK_TCK;
        cpu = secs > 0 ? (100 * s.cpuUs) / (secs * 1e6) : 0;
      }
      rows.push({ s, cpu: Math.max(0, cpu) });
      next.set(s.id, { cpuUs: s.cpuUs, at: now });
    }
    prev = next;
    return rows;
  };
  for (let first = true; ; first = false) {
    if (!first) await new Promise((r) => setTimeout(r, 1000));
    const rows = take();
    const text = render(rows, format === 'json');
    if (o['no-stream']) {
      writeOut(text);
      return 0;
    }
    process.stdout.write(process.stdout.isTTY && format === 'table' ? `\x1b[2J\x1b[H${text}` : text);
    if (named.length && rows.length === 0) return 0;
  }
}
