// `nsbox ps|list`, `inspect` and `top`: what containers there are, and what runs in one.
import { readFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import {
  CLK_TCK,
  cmdline,
  descendants,
  NAMESPACES,
  nsId,
  nsPids,
  procStat,
  procUid,
  processesIn,
  uptime,
} from '../state/proc.js';
import { containerAlive, find, list, type ContainerState } from '../state/store.js';
import { escapeText, safeJson } from './escape.js';
import { writeOut } from './out.js';
import { allRecords, readRecord } from '../network/record.js';
import { portText } from '../network/ports.js';
import { defaultRoot, Store } from '../oci/state.js';

const PS_HELP = `Usage: nsbox ps [-a] [-q] [--filter KEY=VALUE]... [--format table|json|TEMPLATE]
       nsbox list            (the same as ps -a)

List containers: running and starting ones, or with -a stopped ones too.
  -a, --all        include stopped containers
  -q, --quiet      only ids
  -f, --filter F   name=NAME (a substring), id=PREFIX, status=created|running|stopped (repeatable:
                   the same key any of, different keys all of, as docker)
      --format F   table (default), json, or a template as podman takes it: '{{.Names}} {{.Status}}',
                   'table {{.ID}}\\t{{.Names}}' (fields: ID, Names, Status, State, Command,
                   CreatedAt, RunningFor, Pid, Ports, Rootfs)`;

const INSPECT_HELP = `Usage: nsbox inspect NAME|ID...

Print the state of containers as a JSON array: status, pid, times, exit status, namespaces, limits,
mounts, cgroups, network.`;

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
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')}\n`;
}

/**
 * nsbox-runtime's containers under its default --root (those podman and containerd run with it): listed
 * beside nsbox's own, marked runtime "oci"; they are driven through the runtime, not nsbox's commands.
 * NSBOX_RUNTIME_ROOT names another --root; with a state directory of its own (NSBOX_STATE_DIR) and no
 * NSBOX_RUNTIME_ROOT, nsbox lists only its own.
 */
function ociContainers(): ContainerState[] {
  const at = process.env.NSBOX_RUNTIME_ROOT || (process.env.NSBOX_STATE_DIR ? undefined : defaultRoot());
  if (!at?.startsWith('/')) return [];
  const store = new Store(at);
  const out: ContainerState[] = [];
  for (const id of store.ids()) {
    let s: ReturnType<Store['read']>;
    try {
      s = store.read(id);
    } catch {
      continue; // a damaged state file is the runtime's to report
    }
    if (!s) continue;
    const status = store.status(s);
    const st = {
      id,
      name: id,
      status,
      rootfs: s.rootfs,
      command: s.command ?? [],
      hostname: '',
      createdAt: s.created,
      pid: status === 'stopped' ? 0 : s.pid,
      pidStart: s.pidStart,
      monitor: { pid: 0, start: 0 },
      detached: true,
      autoRemove: false,
      init: false,
      tty: false,
      exec: { env: s.exec.env, cwd: s.exec.cwd, creds: s.exec.creds },
      logLimit: 0,
      runtime: 'oci',
    };
    out.push(st as unknown as ContainerState);
  }
  return out;
}

function summary(st: ContainerState) {
  return {
    runtime: (st as { runtime?: string }).runtime ?? 'nsbox',
    id: st.id,
    name: st.name,
    status: st.status,
    pid: st.status === 'stopped' ? 0 : st.pid,
    command: st.command,
    rootfs: st.rootfs,
    createdAt: st.createdAt,
    startedAt: st.startedAt ?? null,
    finishedAt: st.finishedAt ?? null,
    exit: st.exit ?? null,
    error: st.error ?? null,
    detached: st.detached,
  };
}

/** The fields a --format template may name, as docker and podman call them. */
const FIELDS: Record<string, (st: ContainerState) => string> = {
  ID: (st) => st.id,
  Names: (st) => st.name,
  Status: statusText,
  State: (st) => st.status,
  Command: (st) => st.command.join(' '),
  CreatedAt: (st) => st.createdAt,
  RunningFor: (st) => ago(st.createdAt),
  Pid: (st) => (st.status === 'stopped' ? '0' : String(st.pid)),
  Ports: (st) => readRecord(st.id)?.ports.map(portText).join(', ') ?? '',
  Rootfs: (st) => st.rootfs,
};

/** A Go-template-style format: {{.Field}} replaced, \t and \n as tab and newline; `table ` adds a header. */
function templateRows(format: string, shown: ContainerState[]): string {
  const table = format.startsWith('table ');
  const body = (table ? format.slice(6) : format).replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const parts = body.split(/(\{\{\s*\.?\w*\s*\}\})/);
  const names = parts.filter((p) => p.startsWith('{{')).map((p) => p.replace(/[{}.\s]/g, ''));
  for (const n of names) {
    if (!Object.hasOwn(FIELDS, n))
      throw new NsboxError(`invalid --format: unknown field .${n} (one of ${Object.keys(FIELDS).join(', ')})`);
  }
  const render = (cell: (name: string) => string) =>
    parts.map((p) => (p.startsWith('{{') ? cell(p.replace(/[{}.\s]/g, '')) : p)).join('');
  const lines = shown.map((st) => render((n) => escapeText(FIELDS[n](st))));
  if (table) lines.unshift(render((n) => n.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()));
  return lines.map((l) => `${l}\n`).join('');
}

const STATES = ['creating', 'created', 'running', 'paused', 'stopped'];

/** --filter KEY=VALUE, as docker: the same key any of its values, different keys all. */
function filterOf(list: string[] | undefined): (st: ContainerState) => boolean {
  const by = new Map<string, string[]>();
  for (const f of list ?? []) {
    const eq = f.indexOf('=');
    const key = f.slice(0, eq),
      value = f.slice(eq + 1);
    if (eq <= 0 || !['name', 'id', 'status'].includes(key)) {
      throw new NsboxError(`invalid --filter: ${f} (name=NAME, id=PREFIX or status=STATE)`);
    }
    if (key === 'status' && !STATES.includes(value))
      throw new NsboxError(`invalid --filter: ${f} (status is one of ${STATES.join(', ')})`);
    by.set(key, [...(by.get(key) ?? []), value]);
  }
  const test: Record<string, (st: ContainerState, v: string) => boolean> = {
    name: (st, v) => st.name.includes(v),
    id: (st, v) => st.id.startsWith(v),
    status: (st, v) => st.status === v,
  };
  return (st) => [...by].every(([k, vs]) => vs.some((v) => test[k](st, v)));
}

function ps(argv: string[], all: boolean): number {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'all', short: 'a' },
      { long: 'quiet', short: 'q' },
      { long: 'format', value: 'single' },
      { long: 'filter', short: 'f', value: 'multiple' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) return help(PS_HELP);
  if (positionals.length) throw new NsboxError(`ps takes no arguments: ${positionals[0]}`);
  const format = (o.format as string | undefined) ?? 'table';
  if (format !== 'table' && format !== 'json' && !format.includes('{{')) {
    throw new NsboxError(`invalid --format: ${format} (table, json or a template such as '{{.Names}}')`);
  }
  const filter = filterOf(o.filter as string[] | undefined);
  // A status filter names stopped containers too, as with -a.
  const any = all || o.all || (o.filter as string[] | undefined)?.some((f) => f.startsWith('status='));
  const shown = [...list(), ...ociContainers()].filter((st) => (any || st.status !== 'stopped') && filter(st));
  if (o.quiet) writeOut(shown.map((s) => `${s.id}\n`).join(''));
  else if (format.includes('{{')) writeOut(templateRows(format, shown));
  else if (format === 'json') writeOut(`${safeJson(shown.map(summary), 1)}\n`);
  else {
    const rows = [['CONTAINER ID', 'NAME', 'IMAGE', 'STATUS', 'PID', 'CREATED', 'PORTS', 'COMMAND']];
    // The network records in one pass (only containers with a network have one), not a lookup each.
    const nets = new Map(allRecords().map((r) => [r.id, r]));
    for (const st of shown) {
      const ports = nets.get(st.id)?.ports.map(portText).join(', ') || '-';
      const pid = st.status === 'stopped' ? '-' : String(st.pid || '-');
      rows.push([
        st.id.slice(0, 12),
        st.name,
        st.rootfs,
        statusText(st),
        pid,
        ago(st.createdAt),
        ports,
        st.command.join(' '),
      ]);
    }
    writeOut(table(rows));
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
      mode: net.mode,
      name: net.network ?? null,
      address: net.address,
      ...(net.address6 ? { address6: net.address6 } : {}),
      ports: net.ports.map(portText),
      aliases: net.aliases,
    };
    return {
      ...rest,
      running,
      namespaces: running ? namespaces : null,
      env: exec.env,
      cwd: exec.cwd,
      network,
      limits: st.config?.limits ?? null,
      mounts: st.config?.mounts ?? [],
      cgroups: running ? cgroupsOf(st.pid) : null,
    };
  });
  process.stdout.write(`${safeJson(out, 1)}\n`);
  return 0;
}

/** /proc/PID/cgroup as { hierarchy: path }: where the container's processes are accounted. */
function cgroupsOf(pid: number): Record<string, string> | null {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
      const m = /^\d+:([^:]*):(.*)$/.exec(line);
      if (m) out[m[1] || 'unified'] = m[2];
    }
    return out;
  } catch {
    return null;
  }
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
    const two = (n: number) => String(n).padStart(2, '0');
    const time = `${two(Math.floor(cpu / 3600))}:${two(Math.floor(cpu / 60) % 60)}:${two(cpu % 60)}`;
    rows.push([
      String(pid),
      String(nsPids(pid).at(-1) ?? '?'),
      String(s.ppid),
      String(procUid(pid) ?? '?'),
      s.state,
      started,
      time,
      cmdline(pid) || `[${s.comm}]`,
    ]);
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
