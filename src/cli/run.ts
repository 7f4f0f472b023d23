// `nsbox run [OPTIONS] ROOTFS CMD [ARG...]`: run a command as PID 1 of a new container and
// exit with its status.
import { Container, type StartPart } from '../container.js';
import { cliMessage, exitStatusOf, NsboxError } from '../errors.js';
import { parseArgs, type OptionDef, type Parsed } from './args.js';
import { IDENTITY_HELP, IDENTITY_OPTIONS, identityFromOptions } from '../userns/cli.js';
import { LIMIT_HELP, LIMIT_OPTIONS, limitsFromOptions, reportOom } from '../cgroups/cli.js';
import { SECURITY_HELP, SECURITY_OPTIONS, securityFromOptions } from './security.js';
import { IMAGE_RUN_HELP, IMAGE_RUN_OPTIONS } from './image-options.js';
import { setCgroupDebug } from '../cgroups/part.js';
import { SIGNAL_MODES, type SignalMode } from '../signals.js';
import { applyEnv } from './env.js';
import type { MountSpec } from '../rootfs/mounts.js';
import { checkName, type ContainerSpec } from '../spec.js';
import { escapeText } from './escape.js';
import { NETWORK_HELP, NETWORK_OPTIONS, networkFromOptions } from '../network/cli.js';
import { isImageArg } from '../images/rwlayer.js';

export const RUN_HELP = `Usage: nsbox run [OPTIONS] ROOTFS|IMAGE [CMD [ARG...]]

Run CMD as PID 1 of new mount, PID, UTS, IPC, network and cgroup namespaces rooted in
ROOTFS (a directory, or "host" for read-only binds of this host's /usr, /etc, ...), or in a
copy-on-write root of IMAGE (any other argument: pulled when missing; CMD replaces its Cmd).

Options:
      --name NAME        container name (default: a random id)
      --hostname NAME    hostname inside (default: the name)
  -e, --env K=V          set an environment variable (repeatable; a bare K passes this shell's value, if set)
      --env-file FILE    read KEY=VALUE lines from FILE (repeatable; # comments)
  -w, --workdir DIR      working directory inside (default: /)
      --read-only        mount the root read-only, with tmpfs /tmp and /run (podman's way)
      --read-only-tmpfs=false  with --read-only: no tmpfs /tmp and /run
  -d, --detach           run in the background and print the container's id
      --rm               remove the container when it ends (foreground runs always are)
      --init             PID 1 is a small init that reaps orphans and forwards signals
      --signals MODE     process (default): a signal PID 1 has no handler for ends the container,
                         as it would end the process outside one; docker: PID 1 ignores it
  -t, --tty              give the command a terminal (its /dev/console)
  -i, --interactive      with -t: send this terminal's input to it
      --log-size SIZE    with -d: keep at most about 2*SIZE of output (default 1m)
${IDENTITY_HELP}
${LIMIT_HELP}
${SECURITY_HELP}
${NETWORK_HELP}
${IMAGE_RUN_HELP}
  -h, --help             show this help
  -V, --version          show the version

Exit status: the command's, 128+N when it was killed by signal N, 125 when nsbox failed,
126 when the command cannot be executed, 127 when it is not found.`;

const OPTIONS: OptionDef[] = [
  { long: 'name', value: 'single' },
  { long: 'hostname', value: 'single' },
  { long: 'env', short: 'e', value: 'multiple' },
  { long: 'env-file', value: 'multiple' },
  { long: 'workdir', short: 'w', value: 'single' },
  { long: 'read-only' },
  { long: 'read-only-tmpfs', value: 'optional' },
  { long: 'detach', short: 'd' },
  { long: 'rm' },
  { long: 'init' },
  { long: 'signals', value: 'single' },
  { long: 'tty', short: 't' },
  { long: 'interactive', short: 'i' },
  { long: 'log-size', value: 'single' },
  ...IDENTITY_OPTIONS,
  ...LIMIT_OPTIONS,
  ...SECURITY_OPTIONS,
  ...NETWORK_OPTIONS,
  ...IMAGE_RUN_OPTIONS,
  { long: 'help', short: 'h' },
  { long: 'version', short: 'V' },
];

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function parseEnv(o: Parsed['options']): Record<string, string> {
  const env = new Map<string, string>();
  applyEnv(env, o.env as string[] | undefined, o['env-file'] as string[] | undefined);
  return Object.fromEntries(env);
}

/** What starts a container besides its options: set by a foreground run, the detached monitor, a terminal. */
export interface Launch {
  id?: string;
  stdio?: [number, number, number];
  parts?: StartPart[];
}

/** `run`'s options, checked. The detached monitor parses the same argv. */
export function parseRunArgs(argv: string[]): { o: Parsed['options']; rootfs: string; command: string[] } {
  const { options: o, positionals } = parseArgs(argv, OPTIONS, 1);
  const [rootfs, ...command] = positionals;
  return { o, rootfs, command };
}

/** The container that `run` with these options describes. */
let imageRun: typeof import('./image-run.js') | undefined;

/** The image code (src/cli/image-run.ts), loaded only for a run from an image: containerFromArgs needs it then. */
export async function loadImageRun(): Promise<typeof import('./image-run.js')> {
  imageRun ??= await import('./image-run.js');
  return imageRun;
}

export function containerFromArgs(
  o: Parsed['options'],
  rootfs: string,
  command: string[],
  launch: Launch = {},
): Container {
  const security = securityFromOptions(o);
  const spec: ContainerSpec = {
    rootfs,
    command,
    id: launch.id,
    name: o.name as string | undefined,
    hostname: o.hostname as string | undefined,
    cwd: o.workdir as string | undefined,
    readOnly: !!o['read-only'],
    signals: signalMode(o.signals),
    init: !!o.init,
    ...identityFromOptions(o),
    ...security,
    ...readOnlyTmpfs(o, security.mounts),
    limits: limitsFromOptions(o),
    network: networkFromOptions(o),
    env: { TERM: process.env.TERM || 'xterm', ...parseEnv(o) },
    stdio: launch.stdio,
  };
  if (!isImageArg(rootfs)) return new Container(spec, launch.parts);
  if (!imageRun) throw new Error('containerFromArgs: loadImageRun() first');
  // A foreground run removes its copy-on-write layer when it ends; a detached one with its state.
  const img = imageRun.fromImage(spec, o, rootfs, !o.detach);
  try {
    return new Container(img.spec, [...(launch.parts ?? []), img.part]);
  } catch (e) {
    img.part.abort?.();
    throw e;
  }
}

/**
 * --read-only adds a tmpfs on /tmp and /run, as podman does (where no mount of the user's is there),
 * unless --read-only-tmpfs=false. Mounts keep their order: the user's come after.
 */
function readOnlyTmpfs(o: Parsed['options'], user: MountSpec[] | undefined): { mounts?: MountSpec[] } {
  const v = o['read-only-tmpfs'];
  if (v !== undefined && v !== true && v !== 'true' && v !== 'false') {
    throw new NsboxError(`invalid --read-only-tmpfs value: ${v} (true or false)`, { field: 'read-only-tmpfs' });
  }
  if (!o['read-only'] || v === 'false') return {};
  const taken = new Set((user ?? []).map((m) => m.target.replace(/\/+$/, '')));
  const extra: MountSpec[] = ['/tmp', '/run']
    .filter((t) => !taken.has(t))
    .map((target) => ({ type: 'tmpfs', target, mode: target === '/tmp' ? 0o1777 : 0o755, size: '64m' }));
  return { mounts: [...extra, ...(user ?? [])] };
}

/** What `inspect` shows of a container's set-up: its limits and mounts, as given. */
export function configOf(o: Parsed['options']): {
  limits?: Record<string, unknown>;
  mounts?: Record<string, unknown>[];
} {
  const mounts = securityFromOptions(o).mounts as Record<string, unknown>[] | undefined;
  return { limits: limitsFromOptions(o) as Record<string, unknown> | undefined, mounts };
}

/** --pull, --entrypoint, --platform and --tls-verify: checked before anything is made, and only for an image. */
function checkImageOptions(o: Parsed['options'], image: boolean): void {
  const pull = o.pull as string | undefined;
  if (pull !== undefined && !['missing', 'always', 'never'].includes(pull)) {
    throw new NsboxError(`invalid --pull: ${pull} (missing, always or never)`, { field: 'pull' });
  }
  const platform = o.platform as string | undefined;
  if (platform !== undefined && !/^[a-z0-9_-]+\/[a-z0-9_-]+(\/[a-z0-9_.-]+)?$/.test(platform)) {
    throw new NsboxError(`invalid --platform: ${platform} (OS/ARCH[/VARIANT], e.g. linux/amd64)`, {
      field: 'platform',
    });
  }
  if (image) return;
  for (const k of ['pull', 'entrypoint', 'platform', 'tls-verify']) {
    if (o[k] !== undefined)
      throw new NsboxError(`--${k} applies to an image, not a root filesystem directory`, { field: k });
  }
}

/** --signals, checked before anything is made. */
export function signalMode(v: unknown): SignalMode {
  if (v === undefined) return 'process';
  if (!SIGNAL_MODES.includes(v as SignalMode)) {
    throw new NsboxError(`invalid --signals: ${v} (one of ${SIGNAL_MODES.join(', ')})`, { field: 'signals' });
  }
  return v as SignalMode;
}

/**
 * Ctrl-Z stops this process, not the container (it runs in a session of its own): rather than leave
 * it running unattended, refuse to be suspended, and say so.
 */
function refuseSuspend(): void {
  process.on('SIGTSTP', () => {
    process.stderr.write('nsbox: a container cannot be suspended from its terminal (Ctrl-Z ignored; Ctrl-C ends it)\n');
  });
}

export async function runCommand(argv: string[], version: string): Promise<number> {
  const { o, rootfs, command } = parseRunArgs(argv);
  if (o.help) {
    process.stdout.write(`${RUN_HELP}\n`);
    return 0;
  }
  if (o.version) {
    process.stdout.write(`nsbox ${version}\n`);
    return 0;
  }
  if (!rootfs) throw new NsboxError('missing ROOTFS (see --help)');
  const image = isImageArg(rootfs);
  if (command.length === 0 && !image) throw new NsboxError('no command given (see --help)');
  if (o.name !== undefined) checkName(o.name); // before anything names a file after it
  checkImageOptions(o, image);
  if (image) await (await loadImageRun()).ensureImage(rootfs, o);
  const limits = limitsFromOptions(o); // bad values fail before anything is made
  signalMode(o.signals);
  if (o.debug) setCgroupDebug((line) => process.stderr.write(`nsbox: ${line}\n`));
  if (o.detach) return (await import('./detach.js')).runDetached(argv, o, rootfs, command);
  // Registered in the state directory while it runs (for ps and exec), with a terminal for -t.
  const fg = await (await import('./foreground.js')).foreground(o, rootfs, command);
  const c = fg.start((launch) => containerFromArgs(o, rootfs, command, launch));
  for (const sig of FORWARDED) process.on(sig, () => c.kill(sig));
  refuseSuspend();
  try {
    await c.ready;
  } catch (e) {
    if (e instanceof NsboxError) return fail(e);
    throw e;
  }
  const st = await c.exited;
  if (st.oomKilled) return reportOom(st, limits);
  return st.status;
}

function fail(e: NsboxError): number {
  process.stderr.write(`nsbox: ${escapeText(cliMessage(e))}\n`);
  return exitStatusOf(e);
}

export { fail as reportError };
