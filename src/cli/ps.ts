// `nsbox ps|list`, `inspect` and `top`: what containers there are, and what runs in one.
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { CLK_TCK, cmdline, descendants, NAMESPACES, nsId, nsPids, procStat, procUid, processesIn, uptime } from '../state/proc.js';
import { containerAlive, find, list, type ContainerState } from '../state/store.js';
import { escapeText, safeJson } from './escape.js';
import { readRecord } from '../network/record.js';
import { portText } from '../network/ports.js';

const PS_HELP = `Usage: nsbox ps [-a] [-q] [--format table|json]
       nsbox list            (the same as ps -a)

List containers: running and starting ones, or with -a stopped ones too.
  -a, --all        include stopped containers
  -q, --quiet      only ids
      --format F   table (default) or json`;

const INSPECT_HELP = `Usage: nsbox inspect NAME|ID...

Print the state of containers as a JSON array: status, pids, times, exit status, namespaces.`;

const TOP_HELP = `Usage: nsbox top NAME|ID

List the processes of a running container with their host PID and their PID inside.`;

export function ago(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'} ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'} ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? '' : 's'} ago`;
  return `${Math.round(h / 24)} days ago`;
}

export function statusText(st: ContainerState): string {
  if (st.status !== 'stopped') return st.status;
  if (st.exit?.signal) return `stopped (${st.exit.signal}${st.exit.oomKilled ? ', out of memory' : ''})`;
  if (st.exit) return `stopped (exit ${st.exit.code}${st.exit.oomKilled ? ', out of memory' : ''})`;
  return 'stopped';
}

/** Columns padded to their widest cell; every cell escaped (a container sets its names and argv). */
export function table(cells: string[][]): string {
  const rows = cells.map((r) => r.map(escapeText));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

function summary(st: ContainerState) {
  return {
    id: st.id, name: st.name, status: st.status, pid: st.status === 'stopped' ? 0 : st.pid, command: st.command,
    rootfs: st.rootfs, createdAt: st.createdAt, startedAt: st.startedAt ?? null, finishedAt: st.finishedAt ?? null,
    exit: st.exit ?? null, error: st.error ?? null, detached: st.detached,
  };
}

function ps(argv: string[], all: boolean): number {
  const { options: o, positionals } = parseArgs(argv, [
    { long: 'all', short: 'a' }, { long: 'quiet', short: 'q' }, { long: 'format', value: 'single' }, { long: 'help', short: 'h' },
  ], Infinity);
  if (o.help) return help(PS_HELP);
  if (positionals.length) throw new NsboxError(`ps takes no arguments: ${positionals[0]}`);
  const format = (o.format as string | undefined) ?? 'table';
  if (format !== 'table' && format !== 'json') throw new NsboxError(`invalid --format: ${format} (table or json)`);
  const shown = list().filter((st) => all || o.all || st.status !== 'stopped');
  if (o.quiet) process.stdout.write(shown.map((s) => `${s.id}\n`).join(''));
  else if (format === 'json') process.stdout.write(`${safeJson(shown.map(summary), 1)}\n`);
  else {
    const rows = [['CONTAINER ID', 'NAME', 'STATUS', 'PID', 'CREATED', 'PORTS', 'COMMAND']];
    for (const st of shown) {
      const ports = readRecord(st.id)?.ports.map(portText).join(', ') || '-';
      const pid = st.status === 'stopped' ? '-' : String(st.pid || '-');
      rows.push([st.id, st.name, statusText(st), pid, ago(st.createdAt), ports, st.command.join(' ')]);
    }
    process.stdout.write(table(rows));
  }
  return 0;
}

function inspect(argv: string[]): number {
  const { options: o, positionals } = parseArgs(argv, [{ long: 'help', short: 'h' }], Infinity);
  if (o.help) return help(INSPECT_HELP);
  if (!positionals.length) throw new NsboxError('inspect needs a container name or id');
  const out = positionals.map((ref) => {
    const st = find(ref);
    const running = containerAlive(st);
    const namespaces: Record<string, string | null> = {};
    if (running) for (const ns of NAMESPACES) namespaces[ns] = nsId(st.pid, ns);
    const { exec, ...rest } = st;
    const net = readRecord(st.id);
    const network = net && {
      mode: net.mode, name: net.network ?? null, address: net.address, ports: net.ports.map(portText), aliases: net.aliases,
    };
    return { ...rest, running, namespaces: running ? namespaces : null, env: exec.env, cwd: exec.cwd, network };
  });
  process.stdout.write(`${safeJson(out, 1)}\n`);
  return 0;
}

function top(argv: string[]): number {
  const { options: o, positionals } = parseArgs(argv, [{ long: 'help', short: 'h' }], 1);
  if (o.help) return help(TOP_HELP);
  if (positionals.length !== 1) throw new NsboxError('top needs one container name or id');
  const st = find(positionals[0]);
  if (!containerAlive(st)) throw new NsboxError(`container ${st.name} is not running`);
  // Its own PID namespace holds exactly its processes; sharing the host's, take PID 1's descendants.
  const pidns = nsId(st.pid, 'pid');
  const pids = pidns && pidns !== nsId('self', 'pid') ? processesIn('pid', pidns) : descendants(st.pid);
  const boot = Date.now() / 1000 - uptime();
  const rows = [['PID', 'CPID', 'PPID', 'UID', 'STAT', 'STARTED', 'TIME', 'COMMAND']];
  for (const pid of pids) {
    const s = procStat(pid);
    if (!s) continue;
    const cpu = Math.round((s.utime + s.stime) / CLK_TCK);
    const started = new Date((boot + s.start / CLK_TCK) * 1000).toTimeString().slice(0, 8);
    const time = `${String(Math.floor(cpu / 3600)).padStart(2, '0')}:${String(Math.floor(cpu / 60) % 60).padStart(2, '0')}:${String(cpu % 60).padStart(2, '0')}`;
    rows.push([String(pid), String(nsPids(pid).at(-1) ?? '?'), String(s.ppid), String(procUid(pid) ?? '?'), s.state, started, time, cmdline(pid) || `[${s.comm}]`]);
  }
  process.stdout.write(table(rows));
  return 0;
}

function help(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

export async function command(name: string, argv: string[]): Promise<number> {
  if (name === 'inspect') return inspect(argv);
  if (name === 'top') return top(argv);
  return ps(argv, name === 'list');
}
