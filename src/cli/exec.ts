// `nsbox exec [OPTIONS] NAME CMD [ARG...]`: run a command in a running container, as
// `docker exec`; and `nsbox exec --target PID [--mount] [--uts] ... CMD`, as nsenter does.
import { closeSync, openSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { NsboxError } from '../errors.js';
import { OP, type Op } from '../plan/ops.js';
import * as op from '../plan/ops.js';
import { parseArgs, type OptionDef } from './args.js';
import { differentNamespaces, Exec } from '../exec/exec.js';
import { NAMESPACES, openPidfd, procStat, type NsName } from '../state/proc.js';
import { find, locked, pidfdOf, type ContainerState, type SavedOp } from '../state/store.js';
import { openTerminal, relay, type Terminal } from '../tty/relay.js';
import { resolveUser } from '../userns/users.js';

const EXEC_HELP = `Usage: nsbox exec [OPTIONS] NAME|ID CMD [ARG...]
       nsbox exec --target PID [--mount] [--uts] [--ipc] [--net] [--pid] [--user] [--cgroup] CMD [ARG...]

Run CMD inside a running container: in all its namespaces (user first), its cgroup, root and
working directory, with its environment, user, capabilities, no_new_privs and seccomp filter.
The second form joins the namespaces of any process, as nsenter does (all of them when none is
named), keeping this process's environment and credentials (root of a joined user namespace).

Options:
  -e, --env K=V          set an environment variable (repeatable; -e K passes this one's value)
  -w, --workdir DIR      working directory inside (default: the container's)
  -u, --user U[:G]       user and group, numbers or names from the container's /etc/passwd
  -t, --tty              give the command a terminal
  -i, --interactive      send this process's stdin to the command (always with a plain pipe; with -t, to the terminal)
      --target PID       join the namespaces of PID (nsenter form)
  --mount --uts --ipc --net --pid --user --cgroup --time   (with --target) the namespaces to join

Exit status: the command's; 126 when it cannot be executed, 127 when it is not found, 125 on other errors.`;

const NS_OPTION: Record<string, NsName> = { mount: 'mnt', uts: 'uts', ipc: 'ipc', net: 'net', pid: 'pid', user: 'user', cgroup: 'cgroup', time: 'time' };

const COMMON: OptionDef[] = [
  { long: 'env', short: 'e', value: 'multiple' },
  { long: 'workdir', short: 'w', value: 'single' },
  { long: 'tty', short: 't' },
  { long: 'interactive', short: 'i' },
  { long: 'help', short: 'h' },
];
/** docker exec: -u/--user takes a user. */
const CONTAINER_OPTIONS: OptionDef[] = [...COMMON, { long: 'user', short: 'u', value: 'single' }];
/** nsenter: --target PID and the namespaces as flags, --user among them. */
const TARGET_OPTIONS: OptionDef[] = [...COMMON, { long: 'target', value: 'single' }, ...Object.keys(NS_OPTION).map((long) => ({ long }))];

/** The nsenter form when --target comes among the options (before the first positional). */
function isTargetForm(argv: string[]): boolean {
  for (const a of argv) {
    if (a === '--target' || a.startsWith('--target=')) return true;
    if (a === '--' || !a.startsWith('-')) return false;
  }
  return false;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function setEnv(base: string[], list: string[] | undefined): string[] {
  const env = new Map(base.map((kv) => [kv.slice(0, kv.indexOf('=')), kv]));
  for (const kv of list ?? []) {
    const eq = kv.indexOf('=');
    if (kv === '') throw new NsboxError('invalid --env value: an empty name (expected KEY=VALUE or KEY)');
    if (eq > 0) env.set(kv.slice(0, eq), kv);
    else if (eq < 0 && process.env[kv] !== undefined) env.set(kv, `${kv}=${process.env[kv]}`);
    else if (eq < 0) env.delete(kv);
    else throw new NsboxError(`invalid --env value: ${kv} (expected KEY=VALUE)`);
  }
  return [...env.values()];
}

const toOp = (s: SavedOp): Op => ({ op: s.op, s: s.s, n: s.n, b: s.b === undefined ? undefined : Buffer.from(s.b, 'base64'), desc: s.desc });

/**
 * The container's credential steps, with -u applied: its uid, gid and groups replaced; a user
 * other than root gets no capabilities but the bounding set, as docker exec -u gives.
 */
export function credsFor(saved: SavedOp[], user: { uid: number; gid: number; groups: number[] } | null): Op[] {
  const ops = saved.map(toOp);
  if (!user) return ops;
  const out: Op[] = [];
  let placed = false;
  const ids = [op.setgroups(user.groups), op.setresgid(user.gid), op.setresuid(user.uid)];
  for (const o of ops) {
    if (o.op === OP.SETGROUPS) out.push(op.setgroups(user.groups));
    else if (o.op === OP.SETRESGID) out.push(op.setresgid(user.gid));
    else if (o.op === OP.SETRESUID) {
      out.push(op.setresuid(user.uid));
      placed = true;
    } else if (o.op === OP.CAPS && user.uid !== 0) {
      const n = [...o.n!];
      n.fill(0, 2); // effective, permitted, inheritable, ambient: none
      out.push({ ...o, n });
    } else if (o.op === OP.SECCOMP && !placed) {
      out.push(...ids, o);
      placed = true;
    } else out.push(o);
  }
  if (!placed) out.push(...ids);
  return out;
}

interface Target {
  pid: number;
  pidfd: number;
  namespaces: NsName[];
  env: string[];
  cwd?: string;
  creds: Op[];
  name: string;
}

function containerTarget(ref: string, o: Record<string, unknown>): Target {
  const st: ContainerState = find(ref);
  // Under the container's lock: it cannot be removed between the check and the pidfd.
  const pidfd = locked(st.id, (now) => (now && now.status === 'running' ? pidfdOf(now) : null));
  if (pidfd === null) throw new NsboxError(`container ${st.name} is not running`, { step: 'container' });
  const user = typeof o.user === 'string' ? resolveUser(o.user, [], st.rootfs) : null;
  return {
    pid: st.pid, pidfd, name: st.name, namespaces: differentNamespaces(st.pid, NAMESPACES),
    env: setEnv(st.exec.env, o.env as string[] | undefined), cwd: (o.workdir as string | undefined) ?? st.exec.cwd,
    creds: credsFor(st.exec.creds, user),
  };
}

function pidTarget(v: string, o: Record<string, unknown>): Target {
  if (!/^\d+$/.test(v)) throw new NsboxError(`invalid --target: ${v} (a pid)`);
  const pid = Number(v);
  const st = procStat(pid);
  const pidfd = st ? openPidfd(pid, st.start) : null;
  if (pidfd === null) throw new NsboxError(`no such process: ${pid}`);
  const asked = Object.keys(NS_OPTION).filter((k) => o[k] === true).map((k) => NS_OPTION[k]);
  const namespaces = differentNamespaces(pid, asked.length ? asked : NAMESPACES);
  // Entering a user namespace: become its root, as nsenter does.
  const creds = namespaces.includes('user') ? [op.setresgid(0), op.setresuid(0)] : [];
  return { pid, pidfd, name: `process ${pid}`, namespaces, env: setEnv(Object.entries(process.env).map(([k, x]) => `${k}=${x}`), o.env as string[] | undefined), cwd: o.workdir as string | undefined, creds };
}

export async function command(_name: string, argv: string[]): Promise<number> {
  const nsenter = isTargetForm(argv);
  const { options: o, positionals } = parseArgs(argv, nsenter ? TARGET_OPTIONS : CONTAINER_OPTIONS, 1);
  const wd = o.workdir as string | undefined;
  if (wd !== undefined && !wd.startsWith('/')) throw new NsboxError(`working directory must be absolute: ${wd}`);
  if (o.help) {
    process.stdout.write(`${EXEC_HELP}\n`);
    return 0;
  }
  const ref = nsenter ? undefined : positionals.shift();
  if (!nsenter && !ref) throw new NsboxError('exec needs a container name or id (see --help)');
  if (positionals.length === 0) throw new NsboxError('no command given (see --help)');
  const t = nsenter ? pidTarget(o.target as string, o) : containerTarget(ref!, o);
  let term: Terminal | null = null;
  let devnull = -1;
  let x: Exec;
  try {
    if (o.tty) term = openTerminal();
    else if (!o.interactive) devnull = openSync('/dev/null', 'r');
    const stdio: [number, number, number] = term ? [term.slave, term.slave, term.slave] : [devnull >= 0 ? devnull : 0, 1, 2];
    if (term) t.env = setEnv(t.env, [`TERM=${process.env.TERM || 'xterm'}`]);
    // Like nsenter, the --target form joins namespaces only (--cgroup is the cgroup namespace).
    x = new Exec({ ...t, cgroup: !nsenter, command: positionals, stdio, tty: !!term });
  } catch (e) {
    if (term) {
      closeSync(term.master);
      closeSync(term.slave);
    }
    throw e;
  } finally {
    closeSync(t.pidfd);
    if (devnull >= 0) closeSync(devnull);
  }
  for (const sig of FORWARDED) process.on(sig, () => x.kill(osConstants.signals[sig]));
  const attached = term ? relay(term, !!o.interactive) : Promise.resolve();
  await x.ready;
  const r = await x.exited;
  await attached;
  return r.status;
}
