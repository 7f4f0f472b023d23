// `nsbox exec [OPTIONS] NAME CMD [ARG...]`: run a command in a running container, as
// `docker exec`; and `nsbox exec --target PID [--mount] [--uts] ... CMD`, as nsenter does.
import { closeSync, openSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { NsboxError } from '../errors.js';
import * as op from '../plan/ops.js';
import type { Phase } from '../plan/builder.js';
import { loadStep, type SavedStep } from '../plan/json.js';
import type { Step } from '../plan/steps.js';
import { parseArgs, type OptionDef } from './args.js';
import { applyEnv } from './env.js';
import * as native from '../native.js';
import { differentNamespaces, Exec } from '../exec/exec.js';
import { NAMESPACES, openPidfd, procStat, type NsName } from '../state/proc.js';
import { find, locked, pidfdOf, type ContainerState } from '../state/store.js';
import { openTerminal, relay, warnIfNotTerminal, type Terminal } from '../tty/relay.js';
import { resolveUser } from '../userns/users.js';

const EXEC_HELP = `Usage: nsbox exec [OPTIONS] NAME|ID CMD [ARG...]
       nsbox exec --target PID [--mount] [--uts] [--ipc] [--net] [--pid] [--user] [--cgroup] CMD [ARG...]

Run CMD inside a running container: in all its namespaces (user first), its cgroup, root and
working directory, with its environment, user, capabilities, no_new_privs and seccomp filter.
The second form joins the namespaces of any process, as nsenter does (all of them when none is
named), keeping this process's environment and credentials (root of a joined user namespace).

Options:
  -e, --env K=V          set an environment variable (repeatable; -e K passes this one's value, if set)
      --env-file FILE    read KEY=VALUE lines from FILE (repeatable)
  -w, --workdir DIR      working directory inside (default: the container's)
  -u, --user U[:G]       user and group, numbers or names from the container's /etc/passwd
  -t, --tty              give the command a terminal
  -i, --interactive      send this process's stdin to the command (always with a plain pipe; with -t, to the terminal)
      --target PID       join the namespaces of PID (nsenter form)
  --mount --uts --ipc --net --pid --user --cgroup --time   (with --target) the namespaces to join

Exit status: the command's; 126 when it cannot be executed, 127 when it is not found, 125 on other errors.`;

const NS_OPTION: Record<string, NsName> = {
  mount: 'mnt',
  uts: 'uts',
  ipc: 'ipc',
  net: 'net',
  pid: 'pid',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
};

const COMMON: OptionDef[] = [
  { long: 'env', short: 'e', value: 'multiple' },
  { long: 'env-file', value: 'multiple' },
  { long: 'workdir', short: 'w', value: 'single' },
  { long: 'tty', short: 't' },
  { long: 'interactive', short: 'i' },
  { long: 'help', short: 'h' },
];
/** docker exec: -u/--user takes a user. */
const CONTAINER_OPTIONS: OptionDef[] = [...COMMON, { long: 'user', short: 'u', value: 'single' }];
/** nsenter: --target PID and the namespaces as flags, --user among them. */
const TARGET_OPTIONS: OptionDef[] = [
  ...COMMON,
  { long: 'target', value: 'single' },
  ...Object.keys(NS_OPTION).map((long) => ({ long })),
];

/** The nsenter form when --target comes among the options (before the first positional). */
function isTargetForm(argv: string[]): boolean {
  for (const a of argv) {
    if (a === '--target' || a.startsWith('--target=')) return true;
    if (a === '--' || !a.startsWith('-')) return false;
  }
  return false;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function setEnv(base: string[], list: string[] | undefined, files?: string[]): string[] {
  const env = new Map(base.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  applyEnv(env, list, files);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

type Cred = { phase: Phase; step: Step };

/**
 * The container's credential steps, with -u applied: its uid, gid and groups replaced; a user
 * other than root gets no capabilities but the bounding set, as docker exec -u gives.
 */
export function credsFor(saved: SavedStep[], user: { uid: number; gid: number; groups: number[] } | null): Cred[] {
  const creds = saved.map(loadStep);
  if (!user) return creds;
  // In place: the ids sit between keep-caps and the capability sets in the container's plan.
  const out = creds.map((c): Cred => {
    const s = c.step;
    if (s.kind === 'setgroups') return { ...c, step: op.setgroups(user.groups) };
    if (s.kind === 'setresgid') return { ...c, step: op.setresgid(user.gid) };
    if (s.kind === 'setresuid') return { ...c, step: op.setresuid(user.uid) };
    if (s.kind !== 'caps' || user.uid === 0) return c;
    return { ...c, step: { ...s, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n } };
  });
  if (!out.some((c) => c.step.kind === 'setresuid')) {
    out.push(
      ...[op.setgroups(user.groups), op.setresgid(user.gid), op.setresuid(user.uid)].map(
        (step): Cred => ({ phase: 'identity', step }),
      ),
    );
  }
  return out;
}

interface Target {
  pid: number;
  pidfd: number;
  namespaces: NsName[];
  env: string[];
  cwd?: string;
  creds: Cred[];
  name: string;
}

function containerTarget(ref: string, o: Record<string, unknown>): Target {
  const st: ContainerState = find(ref);
  // Under the container's lock: it cannot be removed between the check and the pidfd.
  const pidfd = locked(st.id, (now) => (now && now.status === 'running' ? pidfdOf(now) : null), undefined, false);
  if (pidfd === null) throw new NsboxError(`container ${st.name} is not running`, { step: 'container' });
  return closingOnError(pidfd, () => {
    const user = typeof o.user === 'string' ? resolveUser(o.user, [], st.rootfs) : null;
    return {
      pid: st.pid,
      pidfd,
      name: st.name,
      namespaces: differentNamespaces(st.pid, NAMESPACES, 'the container is not running any more'),
      env: setEnv(st.exec.env, o.env as string[] | undefined, o['env-file'] as string[] | undefined),
      cwd: (o.workdir as string | undefined) ?? st.exec.cwd,
      creds: credsFor(st.exec.creds, user),
    };
  });
}

/** fn's result; the pidfd is closed if fn throws. */
function closingOnError<T>(pidfd: number, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    closeSync(pidfd);
    throw e;
  }
}

function pidTarget(v: string, o: Record<string, unknown>): Target {
  if (!/^\d+$/.test(v)) throw new NsboxError(`invalid --target: ${v} (a pid)`);
  const pid = Number(v);
  const st = procStat(pid);
  const pidfd = st ? openPidfd(pid, st.start) : null;
  if (pidfd === null) throw new NsboxError(`no such process: ${pid}`);
  const asked = Object.keys(NS_OPTION)
    .filter((k) => o[k] === true)
    .map((k) => NS_OPTION[k]);
  const namespaces = closingOnError(pidfd, () => differentNamespaces(pid, asked.length ? asked : NAMESPACES));
  // Entering a user namespace: become its root, as nsenter does.
  const creds: Cred[] = namespaces.includes('user')
    ? [op.setresgid(0), op.setresuid(0)].map((step) => ({ phase: 'identity', step }))
    : [];
  return {
    pid,
    pidfd,
    name: `process ${pid}`,
    namespaces,
    env: setEnv(
      Object.entries(process.env).map(([k, x]) => `${k}=${x}`),
      o.env as string[] | undefined,
    ),
    cwd: o.workdir as string | undefined,
    creds,
  };
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
    // A container's exec gets a terminal of the container's own devpts, as docker exec -t does.
    if (o.tty) {
      warnIfNotTerminal();
      term = openTerminal(nsenter ? undefined : `/proc/${t.pid}/root`);
      native.pidfdSendSignal(t.pidfd, 0); // still the container's PID 1 (throws ESRCH when it ended)
    } else if (!o.interactive) devnull = openSync('/dev/null', 'r');
    const stdio: [number, number, number] = term ? [term.slave, term.slave, term.slave] : [Math.max(devnull, 0), 1, 2];
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
