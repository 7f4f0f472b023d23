// nsbox-runtime: runc's command line over nsbox's one set-up path. `create` compiles config.json into
// the same plan `nsbox run` uses, with a hold step before exec (src/plan/hold.ts), and exits once the
// container is held: the container lives on, adopted by the caller's subreaper (conmon, a containerd
// shim). Every later command reads ROOT/ID (src/oci/state.ts); there is no monitor process.
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { constants as osConstants, userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import { Container } from '../container.js';
import { holdPart, makeHoldFifo, release } from '../plan/hold.js';
import type { StartPart } from '../plan/part.js';
import { consolePart } from '../tty/console.js';
import { Cgroup, place } from '../cgroups/cgroup.js';
import { CgroupPart } from '../cgroups/part.js';
import { hierarchies } from '../cgroups/hierarchy.js';
import { resolveLimits } from '../cgroups/limits.js';
import { Lock, writeAtomic } from './files.js';
import { openPidfd, procStat } from '../state/proc.js';
import { loadConfig, type OciConfig } from './config.js';
import { ociPart } from './part.js';
import { checkId, defaultRoot, freezer, processes, Store, type Saved } from './state.js';
import { loadCgroup, saveCgroup } from './cgroup.js';
import { UPDATE_FLAGS, update } from './update.js';
import { defaultSpec, features } from './features.js';
import { randomId } from '../spec.js';
import type { IdRange } from '../userns/idmap.js';
import { credentialSteps } from '../exec/creds.js';
import { execIn } from './exec.js';
import { runHookIn, runHooks } from './hooks.js';
import { joinedRoot, joinNamespaces } from './join.js';
import * as op from '../plan/ops.js';

export const VERSION = '0.1.0';
const OCI_VERSION = '1.0.2';

export interface Globals {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
}

type FlagKind = 'string' | 'bool' | 'string[]';

/** runc-style flags: --name value, --name=value, -name value; booleans take no value (or =true/false). */
export function parseFlags(
  argv: string[],
  known: Record<string, FlagKind>,
  aliases: Record<string, string> = {},
): { flags: Record<string, string | boolean | string[]>; rest: string[] } {
  const flags: Record<string, string | boolean | string[]> = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    const eq = a.indexOf('=');
    let name = a.replace(/^--?/, '');
    let value: string | undefined;
    if (eq > 0) {
      name = a.slice(0, eq).replace(/^--?/, '');
      value = a.slice(eq + 1);
    }
    name = aliases[name] ?? name;
    const kind = known[name];
    if (!kind) throw new NsboxError(`unknown flag: ${a}`, { field: name });
    if (kind === 'bool') {
      if (value !== undefined && value !== 'true' && value !== 'false')
        throw new NsboxError(`--${name}: expected true or false`, { field: name });
      flags[name] = value !== 'false';
    } else {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new NsboxError(`--${name} needs a value`, { field: name });
        value = argv[++i];
      }
      if (kind === 'string[]') flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
      else flags[name] = value;
    }
  }
  return { flags, rest: argv.slice(i) };
}

let globals: Globals = { root: '/run/nsbox-runtime', logFormat: 'text', debug: false };

/**
 * Output without Node's stdout and stderr streams (making one costs ~6 ms of a runtime call's start):
 * written whole to the fd, the stream only where the fd is non-blocking.
 */
function out(fd: 1 | 2, text: string): void {
  const b = Buffer.from(text);
  let off = 0;
  try {
    while (off < b.length) off += writeSync(fd, b, off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    (fd === 1 ? process.stdout : process.stderr).write(b.subarray(off));
  }
}

/** A line in the --log file (runc's text or JSON form), and on stderr for errors and --debug. */
export function log(level: 'debug' | 'warning' | 'error', msg: string): void {
  if (level === 'debug' && !globals.debug) return;
  const time = new Date().toISOString();
  if (globals.log) {
    const line =
      globals.logFormat === 'json'
        ? JSON.stringify({ level, msg, time })
        : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
    try {
      appendFileSync(globals.log, `${line}\n`, { mode: 0o600 });
    } catch {
      /* the log is best-effort */
    }
  }
  if (level !== 'debug' || !globals.log) out(2, `nsbox-runtime: ${level === 'error' ? '' : `${level}: `}${msg}\n`);
}

const debug = (line: string) => log('debug', line);

function needId(rest: string[], cmd: string): string {
  if (rest.length === 0) throw new NsboxError(`${cmd}: a container id is required`, { field: 'id' });
  return checkId(rest[0]);
}

/** A signal by number, name or SIG-name. */
export function parseSignal(s: string | undefined): number {
  if (s === undefined) return osConstants.signals.SIGTERM;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw new NsboxError(`invalid signal: ${s}`, { field: 'signal' });
    return n;
  }
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  // Real-time signals by name (glibc's SIGRTMIN is 34, SIGRTMAX 64): Node does not list them.
  const rt = /^SIGRT(MIN|MAX)([+-]\d+)?$/.exec(name);
  if (rt) {
    const n = (rt[1] === 'MIN' ? 34 : 64) + Number(rt[2] ?? 0);
    if (n >= 34 && n <= 64) return n;
  }
  const n = (osConstants.signals as Record<string, number>)[name];
  if (n === undefined) throw new NsboxError(`invalid signal: ${s}`, { field: 'signal' });
  return n;
}

/** The container's cgroup, at the config's cgroupsPath (or ROOT-independent /nsbox-runtime/ID). */
function makeCgroup(c: OciConfig, id: string): Cgroup {
  const limits = resolveLimits(c.spec.limits ?? {});
  const at = c.cgroupsPath ?? `/nsbox-runtime/${id}`;
  const h = hierarchies();
  const placement = place(limits, h);
  // v1: a devices directory of its own too, so the devices rules live and go with this cgroup.
  const devices = h.v1.find((x) => x.controllers.includes('devices'));
  if (devices && !placement.has(devices)) placement.set(devices, []);
  // As runc: a directory for each controller `update` may set later, where the host has it.
  for (const ctl of ['cpu', 'cpuset', 'io'] as const) {
    const hier = h.byController[ctl];
    if (hier && !placement.get(hier)?.includes(ctl)) placement.set(hier, [...(placement.get(hier) ?? []), ctl]);
  }
  for (const hier of placement.keys()) {
    if (existsSync(`${hier.mount}${at}`))
      throw new NsboxError(`cgroup ${hier.mount}${at} already exists`, { field: 'cgroupsPath' });
  }
  return Cgroup.create(id, limits, placement, at);
}

/**
 * The cgroup; run by an ordinary user (rootless) where the hierarchy is not writable, none when the
 * config sets no limit (runc's rule): pause, resume and kill --all then act on PID 1 alone or refuse.
 */
function rootlessCgroup(c: OciConfig, id: string): Cgroup | undefined {
  try {
    return makeCgroup(c, id);
  } catch (e) {
    const code = (e as NsboxError).code;
    const limits = c.spec.limits ?? {};
    const none = Object.values(limits).every((v) => v === undefined);
    if (process.geteuid?.() === 0 || !none || (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS')) throw e;
    debug(`no cgroup (rootless, no limits in config.json): ${(e as Error).message}`);
    c.spec.limits = undefined;
    return undefined;
  }
}

/**
 * In a user namespace the child opens the FIFO as the namespace's root: the FIFO becomes that host
 * uid's (as runc's exec.fifo), and the way to it (--root and the container's directory) searchable, not
 * readable (0711).
 */
function holdForUserns(
  dir: string,
  fifo: string,
  u: { uidMap?: (string | IdRange)[]; gidMap?: (string | IdRange)[] },
): void {
  const host = (m: (string | IdRange)[] | undefined, what: string) => {
    const r = (m ?? []).find((x): x is IdRange => typeof x === 'object' && x.container === 0);
    if (!r)
      throw new NsboxError(`config.json: $.linux.${what}Mappings: container ${what} 0 must be mapped`, {
        field: `${what}Mappings`,
      });
    return r.host;
  };
  chownSync(fifo, host(u.uidMap, 'uid'), host(u.gidMap, 'gid'));
  chmodSync(dirname(dir), 0o711);
  chmodSync(dir, 0o711);
}

/** --preserve-fds N: the caller's fds 3..3+N-1, passed on as they are (runc's rule), each checked open. */
function preservedFds(n: number): number[] {
  if (n > 16) throw new NsboxError(`--preserve-fds ${n}: at most 16 fds`, { field: 'preserve-fds' });
  const fds = Array.from({ length: n }, (_, i) => 3 + i);
  for (const fd of fds) {
    let dir: boolean;
    try {
      dir = fstatSync(fd).isDirectory();
    } catch {
      throw new NsboxError(`--preserve-fds ${n}: fd ${fd} is not open`, { field: 'preserve-fds' });
    }
    // As for stdio: fchdir to it would leave the container's root.
    if (dir) throw new NsboxError(`--preserve-fds ${n}: fd ${fd} is a directory`, { field: 'preserve-fds' });
  }
  return fds;
}

interface CreateOptions {
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds: number;
}

interface Created {
  container: Container;
  saved: Saved;
}

/** create: the container held before exec, its state saved. On failure nothing is left. */
async function create(store: Store, id: string, o: CreateOptions): Promise<Created> {
  const bundle = resolve(o.bundle);
  const preserved = preservedFds(o.preserveFds);
  const c = loadConfig(bundle, debug);
  if (c.terminal && !o.consoleSocket)
    throw new NsboxError('process.terminal needs --console-socket', { field: 'console-socket' });
  if (!c.terminal && o.consoleSocket)
    throw new NsboxError('--console-socket given but process.terminal is false', { field: 'console-socket' });
  store.ensure();
  const dir = store.dir(id);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new NsboxError(`container "${id}" already exists`, { field: 'id' });
    throw e;
  }
  const lock = Lock.take(`${dir}/lock`);
  const me = procStat(process.pid)!;
  const saved: Saved = {
    ociVersion: c.ociVersion,
    id,
    bundle,
    rootfs: c.spec.rootfs,
    created: new Date().toISOString(),
    owner: userInfo().username,
    annotations: c.annotations,
    command: c.spec.command,
    pid: 0,
    pidStart: 0,
    creator: { pid: process.pid, start: me.start },
    cgroup: null,
    hooks: {
      startContainer: c.hooks.startContainer ?? [],
      poststart: c.hooks.poststart ?? [],
      poststop: c.hooks.poststop ?? [],
    },
    exec: { env: [], cwd: c.spec.cwd ?? '/', uid: 0, gid: 0, creds: [] },
  };
  let cg: Cgroup | undefined;
  let tty: { master: number; slave: number; path: string } | undefined;
  let container: Container | undefined;
  let joins: ReturnType<typeof joinNamespaces> = null;
  try {
    store.write(saved);
    makeHoldFifo(store.fifo(id));
    if (typeof c.spec.userns === 'object') holdForUserns(dir, store.fifo(id), c.spec.userns);
    const root = joinedRoot(c);
    if (root)
      holdForUserns(dir, store.fifo(id), {
        uidMap: [{ container: 0, host: root.uid, size: 1 }],
        gidMap: [{ container: 0, host: root.gid, size: 1 }],
      });
    joins = joinNamespaces(c);
    cg = rootlessCgroup(c, id);
    saved.cgroup = cg ? saveCgroup(cg) : null;
    store.write(saved);
    // What exec replays: the container's environment, credential steps and ids, from its plan.
    const remember: StartPart = {
      planned(plan) {
        saved.exec = { env: [], cwd: c.spec.cwd ?? '/', creds: credentialSteps(plan), uid: 0, gid: 0 };
        for (const x of plan.steps) {
          if (x.kind === 'exec') saved.exec.env = x.env;
          if (x.kind === 'setresuid') saved.exec.uid = x.uid;
          if (x.kind === 'setresgid') saved.exec.gid = x.gid;
        }
      },
    };
    const parts: StartPart[] = [ociPart(c), holdPart(store.fifo(id)), remember];
    const joinedUser = c.joins.some((j) => j.type === 'user');
    if (cg) parts.push(new CgroupPart(cg, c.spec.namespaces?.cgroup !== false, !!c.spec.userns || joinedUser));
    if (joins) parts.push(joins);
    if (preserved.length) {
      parts.push({
        steps(b) {
          for (const fd of preserved) b.passOn(fd);
          b.add('exec-fds', op.keepOnExec(preserved));
        },
      });
    }
    let stdio: [number, number, number] = [0, 1, 2];
    if (c.terminal) {
      tty = native.openpty();
      native.setWinsize(tty.master, c.consoleSize?.height || 24, c.consoleSize?.width || 80);
      stdio = [tty.slave, tty.slave, tty.slave];
      parts.push(consolePart(tty.path));
    }
    const name = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(id) ? id : undefined;
    container = new Container({ ...c.spec, id: randomId(), name, stdio }, parts, { envExact: true });
    cg = undefined; // the container's now: removed when it ends (or by delete)
    if (tty) {
      native.native.sendFd(o.consoleSocket!, tty.master);
      closeSync(tty.master);
      closeSync(tty.slave);
      tty = undefined;
    }
    await container.ready;
    const st = procStat(container.pid);
    if (!st) throw new NsboxError('the container ended while it was created', { step: 'create' });
    saved.pid = container.pid;
    saved.pidStart = st.start;
    store.write(saved);
    // The runtime's own namespaces, the container made and waiting: prestart (deprecated), createRuntime.
    await runHooks('prestart', c.hooks.prestart, store.state(saved));
    await runHooks('createRuntime', c.hooks.createRuntime, store.state(saved));
    for (const h of c.hooks.createContainer ?? []) {
      await runHookIn('createContainer', h, store.state(saved), saved.pid, saved.pidStart, false);
    }
    if (o.pidFile)
      writeAtomic(o.pidFile.startsWith('/') ? o.pidFile : `${process.cwd()}/${o.pidFile}`, String(container.pid));
    return { container, saved };
  } catch (e) {
    if (tty) {
      closeSync(tty.master);
      closeSync(tty.slave);
    }
    if (container) {
      container.kill('SIGKILL');
      await container.exited.catch(() => {}); // its cgroup is removed then
    }
    if (cg) await cg.remove().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  } finally {
    joins?.done();
    lock.unlock();
  }
}

async function start(store: Store, id: string): Promise<void> {
  const s = store.get(id);
  const status = store.status(s);
  if (status !== 'created')
    throw new NsboxError(`cannot start container "${id}": it is ${status}, not created`, { field: 'id' });
  for (const h of s.hooks?.startContainer ?? []) {
    try {
      await runHookIn('startContainer', h, store.state(s), s.pid, s.pidStart, true);
    } catch (e) {
      // The runtime spec: a failing startContainer hook stops the container.
      const fd = openPidfd(s.pid, s.pidStart);
      if (fd !== null) {
        native.pidfdSendSignal(fd, osConstants.signals.SIGKILL);
        closeSync(fd);
      }
      throw e;
    }
  }
  if (!release(store.fifo(id)))
    throw new NsboxError(`cannot start container "${id}": it is no longer waiting to start`, { field: 'id' });
  rmSync(store.fifo(id), { force: true });
  // Started: running, though a short command may have ended already (runc's poststart says running too).
  await runHooks('poststart', s.hooks?.poststart, { ...store.state(s), status: 'running', pid: s.pid }).catch((e) =>
    log('warning', (e as Error).message),
  );
}

function kill(store: Store, id: string, signal: number, all: boolean): void {
  const s = store.get(id);
  const status = store.status(s);
  if (status === 'stopped' || status === 'creating')
    throw new NsboxError(`container "${id}" is not running (${status})`, { field: 'id' });
  if (all) {
    for (const pid of processes(s)) {
      try {
        process.kill(pid, signal);
      } catch {
        /* gone */
      }
    }
    return;
  }
  const fd = openPidfd(s.pid, s.pidStart);
  if (fd === null) throw new NsboxError(`container "${id}" is not running`, { field: 'id' });
  try {
    native.pidfdSendSignal(fd, signal);
  } finally {
    closeSync(fd);
  }
}

/** Resolves once the process behind a pidfd has ended (it need not be our child). */
function ended(fd: number): Promise<void> {
  return new Promise((resolve) => native.watchReadable(fd, () => resolve()));
}

async function remove(store: Store, id: string, force: boolean): Promise<void> {
  const dir = store.dir(id);
  const s = store.read(id);
  if (!s) {
    if (force) return;
    throw new NsboxError(`container "${id}" does not exist`, { field: 'id' });
  }
  const lock = Lock.take(`${dir}/lock`);
  try {
    const status = store.status(s);
    if (status !== 'stopped' && !force) {
      throw new NsboxError(`cannot delete container "${id}": it is ${status} (stop it first, or use --force)`, {
        field: 'id',
      });
    }
    const fd = openPidfd(s.pid, s.pidStart);
    if (fd !== null) {
      try {
        native.pidfdSendSignal(fd, osConstants.signals.SIGKILL);
        const f = freezer(s.cgroup);
        if (f && status === 'paused') writeFileSync(f.file, f.thawed);
        await ended(fd);
      } finally {
        closeSync(fd);
      }
    }
    if (s.cgroup) {
      const cg = loadCgroup(s.cgroup);
      await cg.killAll();
      await cg.remove();
    }
    rmSync(dir, { recursive: true, force: true });
    await runHooks('poststop', s.hooks?.poststop, { ...store.state(s), status: 'stopped', pid: 0 }).catch((e) =>
      log('warning', (e as Error).message),
    );
  } finally {
    lock.unlock();
  }
}

function pause(store: Store, id: string, on: boolean): void {
  const s = store.get(id);
  const status = store.status(s);
  if (on ? status !== 'running' && status !== 'created' : status !== 'paused') {
    throw new NsboxError(`cannot ${on ? 'pause' : 'resume'} container "${id}": it is ${status}`, { field: 'id' });
  }
  const f = freezer(s.cgroup);
  if (!f)
    throw new NsboxError(`cannot ${on ? 'pause' : 'resume'} container "${id}": no freezer cgroup`, { field: 'id' });
  writeFileSync(f.file, on ? f.frozen : f.thawed);
}

function list(store: Store, json: boolean, quiet: boolean): void {
  const states = store
    .ids()
    .map((id) => store.read(id))
    .filter((s): s is Saved => !!s)
    .map((s) => store.state(s));
  if (quiet) {
    for (const s of states) out(1, `${s.id}\n`);
    return;
  }
  if (json) {
    out(1, `${JSON.stringify(states)}\n`);
    return;
  }
  const rows = [
    ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'],
    ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner]),
  ];
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows)
    out(
      1,
      `${r
        .map((c, i) => c.padEnd(w[i]))
        .join('   ')
        .trimEnd()}\n`,
    );
}

function ps(store: Store, id: string, format: string): void {
  const s = store.get(id);
  const pids = store.status(s) === 'stopped' ? [] : processes(s);
  if (format === 'json') {
    out(1, `${JSON.stringify(pids)}\n`);
    return;
  }
  out(1, 'PID   CMD\n');
  for (const pid of pids) out(1, `${String(pid).padEnd(5)} ${procStat(pid)?.comm ?? '?'}\n`);
}

const HELP = `nsbox-runtime ${VERSION}: an OCI runtime (runc's command line) made of nsbox
Usage: nsbox-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [OPTIONS] ID
Commands: create, start, run, state, kill, delete, pause, resume, ps, list, exec, update, spec, features`;

/** One command; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const g = parseFlags(
    argv,
    {
      root: 'string',
      log: 'string',
      'log-format': 'string',
      debug: 'bool',
      'systemd-cgroup': 'bool',
      rootless: 'string',
      criu: 'string',
      help: 'bool',
      version: 'bool',
    },
    { h: 'help', v: 'version' },
  );
  const root = (g.flags.root as string | undefined) ?? defaultRoot();
  const logFormat = (g.flags['log-format'] as string | undefined) ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json')
    throw new NsboxError(`invalid --log-format: ${logFormat} (text or json)`);
  globals = {
    root: root.startsWith('/') ? root : `${process.cwd()}/${root}`,
    log: g.flags.log as string | undefined,
    logFormat,
    debug: !!g.flags.debug,
  };
  if (g.flags.version) {
    out(1, `nsbox-runtime version ${VERSION}\nspec: ${OCI_VERSION}\n`);
    return 0;
  }
  const [cmd, ...args] = g.rest;
  if (g.flags.help || !cmd) {
    out(1, `${HELP}\n`);
    return cmd || g.flags.help ? 0 : 1;
  }
  debug(`${cmd} ${args.join(' ')}`);
  const store = new Store(globals.root);
  switch (cmd) {
    case 'create':
    case 'run': {
      const f = parseFlags(
        args,
        {
          bundle: 'string',
          'pid-file': 'string',
          'console-socket': 'string',
          'no-pivot': 'bool',
          'no-new-keyring': 'bool',
          'preserve-fds': 'string',
          detach: 'bool',
          'no-subreaper': 'bool',
          keep: 'bool',
        },
        { b: 'bundle', d: 'detach' },
      );
      const id = needId(f.rest, cmd);
      const preserve = f.flags['preserve-fds'] === undefined ? 0 : Number(f.flags['preserve-fds']);
      if (!Number.isInteger(preserve) || preserve < 0)
        throw new NsboxError(`invalid --preserve-fds: ${f.flags['preserve-fds']}`);
      if (f.flags['no-pivot']) debug('--no-pivot: ignored (nsbox always uses pivot_root)');
      const made = await create(store, id, {
        bundle: (f.flags.bundle as string | undefined) ?? process.cwd(),
        pidFile: f.flags['pid-file'] as string | undefined,
        consoleSocket: f.flags['console-socket'] as string | undefined,
        preserveFds: preserve,
      });
      if (cmd === 'create') return 0;
      await start(store, id);
      if (f.flags.detach) return 0;
      const st = await made.container.exited;
      if (!f.flags.keep) await remove(store, id, true);
      return st.status;
    }
    case 'start':
      await start(store, needId(args, cmd));
      return 0;
    case 'state':
      out(1, `${JSON.stringify(store.state(store.get(needId(args, cmd))), null, 2)}\n`);
      return 0;
    case 'kill': {
      const f = parseFlags(args, { all: 'bool', signal: 'string' }, { a: 'all', s: 'signal' });
      const id = needId(f.rest, cmd);
      kill(store, id, parseSignal((f.flags.signal as string | undefined) ?? f.rest[1]), !!f.flags.all);
      return 0;
    }
    case 'delete': {
      const f = parseFlags(args, { force: 'bool' }, { f: 'force' });
      await remove(store, needId(f.rest, cmd), !!f.flags.force);
      return 0;
    }
    case 'pause':
    case 'resume':
      pause(store, needId(args, cmd), cmd === 'pause');
      return 0;
    case 'ps': {
      const f = parseFlags(args, { format: 'string' }, { f: 'format' });
      ps(store, needId(f.rest, cmd), (f.flags.format as string | undefined) ?? 'table');
      return 0;
    }
    case 'list': {
      const f = parseFlags(args, { format: 'string', quiet: 'bool' }, { f: 'format', q: 'quiet' });
      list(store, f.flags.format === 'json', !!f.flags.quiet);
      return 0;
    }
    case 'exec': {
      const f = parseFlags(
        args,
        {
          process: 'string',
          detach: 'bool',
          'pid-file': 'string',
          tty: 'bool',
          'console-socket': 'string',
          cwd: 'string',
          env: 'string[]',
          user: 'string',
          'preserve-fds': 'string',
          'process-label': 'string',
          apparmor: 'string',
          'no-new-privs': 'bool',
          cap: 'string[]',
          cgroup: 'string',
          ignore: 'bool',
        },
        { p: 'process', d: 'detach', t: 'tty', e: 'env', u: 'user', c: 'cap' },
      );
      const id = needId(f.rest, cmd);
      const keep = f.flags['preserve-fds'];
      if (keep !== undefined && keep !== '0')
        throw new NsboxError(`exec --preserve-fds ${keep}: not supported (create takes it)`, { field: 'preserve-fds' });
      return execIn(store, id, {
        process: f.flags.process as string | undefined,
        args: f.rest.slice(1),
        detach: !!f.flags.detach,
        pidFile: f.flags['pid-file'] as string | undefined,
        tty: !!f.flags.tty,
        consoleSocket: f.flags['console-socket'] as string | undefined,
        cwd: f.flags.cwd as string | undefined,
        env: (f.flags.env as string[] | undefined) ?? [],
        user: f.flags.user as string | undefined,
      });
    }
    case 'update': {
      const f = parseFlags(args, UPDATE_FLAGS, { r: 'resources' });
      update(store, needId(f.rest, cmd), f.flags, debug);
      return 0;
    }
    case 'features':
      out(1, `${JSON.stringify(features(), null, 2)}\n`);
      return 0;
    case 'spec': {
      const f = parseFlags(args, { bundle: 'string', rootless: 'bool' }, { b: 'bundle' });
      const path = `${(f.flags.bundle as string | undefined) ?? '.'}/config.json`;
      if (existsSync(path)) throw new NsboxError(`File ${path} exists. Remove it first`);
      writeFileSync(path, `${JSON.stringify(defaultSpec(!!f.flags.rootless), null, 2)}\n`, { flag: 'wx' });
      return 0;
    }
    default:
      throw new NsboxError(`unknown command: ${cmd} (see nsbox-runtime --help)`);
  }
}

/** Errors as runc reports them: one line on stderr and in the --log file; exit 1. */
export function report(e: unknown): number {
  // A system call's error (a file that cannot be written...) is the caller's to fix: one line; a bug keeps its stack.
  const sys = e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === 'string';
  const msg =
    e instanceof NsboxError || sys ? (e as Error).message : e instanceof Error ? (e.stack ?? e.message) : String(e);
  log('error', msg);
  return 1;
}
