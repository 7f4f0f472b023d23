// A container's description, checked and completed with defaults before anything is created.
import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { NsboxError } from './errors.js';
import { checkName } from './name.js';

export { checkName } from './name.js';
import { SIGNAL_MODES, type SignalMode } from './signals.js';
import { resolveIdentity, type Identity, type IdentitySpec } from './userns/identity.js';
import { resolveLimits, type Limits, type ResolvedLimits } from './cgroups/limits.js';
import { resolveHardening, type Hardening, type HardeningSpec } from './hardening/spec.js';
import { checkSpecShape } from './spec-check.js';
import { esc } from './check.js';
import { resolveNetwork, type NetworkSpec, type ResolvedNetwork } from './network/spec.js';
import { isPrivileged } from './userns/rootless.js';

/** User namespace, user, groups and capabilities: see IdentitySpec (src/userns/identity.ts). */
export interface ContainerSpec extends IdentitySpec, HardeningSpec {
  /** A directory to use as the root, or 'host' for read-only binds of the host's /usr, /etc, ... */
  rootfs: string;
  /** The command and its arguments; the first is looked up in the container's PATH. */
  command: string[];
  env?: Record<string, string>;
  cwd?: string;
  name?: string;
  /** 12 hex digits; default: random. */
  id?: string;
  hostname?: string;
  readOnly?: boolean;
  /** Namespaces to create (true, the default) or share with the host (false). Mount is always new. */
  namespaces?: Namespaces;
  /** Host fds that become the container's 0, 1 and 2. Default: this process's own. */
  stdio?: [number, number, number];
  /** Memory, CPU and pids quotas, enforced by the container's cgroup (src/cgroups/limits.ts). Given
   *  (even `{}`), the container gets a cgroup, which also accounts its usage. */
  limits?: Limits;
  /** PID 1 is a small init (the addon's) that forks the command, forwards signals and reaps orphans. */
  init?: boolean;
  /** 'process' (default): a signal PID 1 has no handler for ends the container, as it would end the
   *  process outside one (src/signals.ts); 'docker': PID 1 ignores it, as in Docker. */
  signals?: SignalMode;
  /** 'none' (default: only lo), 'bridge', a network's name, 'host', 'container:NAME', 'pasta', or
   *  { mode, ports, aliases, dns, addHosts } (src/network/spec.ts). */
  network?: string | NetworkSpec;
  /** Default true: the container is killed when the thread that started it ends. An OCI runtime's
   *  container outlives `create` (a subreaper such as conmon adopts it). */
  dieWithParent?: boolean;
}

export interface Namespaces {
  pid?: boolean;
  net?: boolean;
  ipc?: boolean;
  uts?: boolean;
  cgroup?: boolean;
}

export interface ResolvedSpec
  extends Required<
    Omit<
      ContainerSpec,
      'env' | 'namespaces' | 'limits' | 'signals' | 'init' | 'network' | keyof IdentitySpec | keyof HardeningSpec
    >
  > {
  id: string;
  /** null: none given (no cgroup is made unless the PID namespace is shared). */
  limits: ResolvedLimits | null;
  env: string[];
  namespaces: Required<Namespaces>;
  identity: Identity;
  /** seccomp, mounts, devices, rlimits (src/hardening/spec.ts). */
  hardening: Hardening;
  signals: SignalMode;
  init: boolean;
  network: ResolvedNetwork;
}

const NAMESPACE_KEYS = ['pid', 'net', 'ipc', 'uts', 'cgroup'] as const;

function resolveNamespaces(ns: Namespaces | undefined): Required<Namespaces> {
  const out = { pid: true, net: true, ipc: true, uts: true, cgroup: true };
  for (const [k, v] of Object.entries(ns ?? {})) {
    const field = `namespaces.${k}`;
    if (!(NAMESPACE_KEYS as readonly string[]).includes(k)) {
      const message = `unknown namespace: ${esc(k)} (one of ${NAMESPACE_KEYS.join(', ')})`;
      throw new NsboxError(message, { step: 'namespaces', field });
    }
    if (v === undefined) continue;
    if (typeof v !== 'boolean') {
      throw new NsboxError(`${field} must be true (new) or false (the host's)`, { step: 'namespaces', field });
    }
    out[k as keyof Namespaces] = v;
  }
  return out;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)*$/;

function fail(field: string, message: string): never {
  throw new NsboxError(message, { step: field, field });
}

function resolveRootfs(rootfs: unknown): string {
  if (typeof rootfs !== 'string' || rootfs === '') fail('rootfs', 'rootfs must be a directory or "host"');
  if (rootfs === 'host') return rootfs;
  let st;
  try {
    st = statSync(rootfs);
  } catch {
    fail('rootfs', `rootfs not found: ${esc(rootfs)}`);
  }
  if (!st.isDirectory()) fail('rootfs', `rootfs is not a directory: ${esc(rootfs)}`);
  const real = realpathSync(rootfs);
  if (real === '/') {
    fail('rootfs', `rootfs ${esc(rootfs)} is the host's own root (use "host" for read-only binds of it)`);
  }
  return real;
}

/** Random bytes read ahead from /dev/urandom (node:crypto takes ~2 ms to load), 6 taken per id. */
let random = Buffer.alloc(0);
let taken = 0;

/** 12 random hex digits, e.g. a container id. */
export function randomId(): string {
  if (taken + 6 > random.length) {
    random = Buffer.alloc(random.length ? 1536 : 6); // a process that makes one id reads no more
    const fd = openSync('/dev/urandom', 'r');
    try {
      readSync(fd, random, 0, random.length, null);
    } finally {
      closeSync(fd);
    }
    taken = 0;
  }
  taken += 6;
  return random.toString('hex', taken - 6, taken);
}

/** What follows from a container's id: its name, hostname and the environment that names it. */
function named(spec: ContainerSpec, id: string): Pick<ResolvedSpec, 'id' | 'name' | 'hostname' | 'env'> {
  if (!/^[0-9a-f]{12}$/.test(id)) fail('id', `invalid container id: ${esc(id)} (12 hex digits)`);
  const name = checkName(spec.name ?? id);
  const hostname = spec.hostname ?? name;
  if (hostname.length > 64 || !HOSTNAME_RE.test(hostname)) fail('hostname', `invalid hostname: ${esc(hostname)}`);
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: '/root', HOSTNAME: hostname };
  for (const [k, v] of Object.entries(spec.env ?? {})) env[k] = v;
  return { id, name, hostname, env: Object.entries(env).map(([k, v]) => `${k}=${v}`) };
}

/**
 * Another container of a spec resolved before (a pool's: the rootfs, identity, hardening and limits are the
 * same for each): a new id and what follows from it, and `stdio`, fds the caller made (pipes, never a directory).
 */
export function respec(base: ResolvedSpec, spec: ContainerSpec, stdio: [number, number, number]): ResolvedSpec {
  return { ...base, ...named(spec, randomId()), stdio };
}

export function resolveSpec(spec: ContainerSpec): ResolvedSpec {
  // Field names and types first (src/spec-check.ts): what follows may trust them.
  checkSpecShape(spec);
  const rootfs = resolveRootfs(spec.rootfs);
  const command = spec.command;
  const { id, name, hostname, env } = named(spec, spec.id ?? randomId());
  const cwd = spec.cwd ?? '/';
  if (!cwd.startsWith('/')) fail('cwd', `working directory must be absolute: ${esc(cwd)}`);
  const stdio = spec.stdio ?? [0, 1, 2];
  const signals = spec.signals ?? 'process';
  if (!SIGNAL_MODES.includes(signals))
    fail('signals', `signals must be one of ${SIGNAL_MODES.join(', ')}, got ${JSON.stringify(signals)}`);
  // Checked now: a closed fd would only fail in the child, after the namespaces exist; a directory
  // as stdio would stay open in the container, where fchdir(0) would leave its root.
  stdio.forEach((fd, i) => {
    let dir: boolean;
    try {
      dir = fstatSync(fd).isDirectory();
    } catch {
      fail('stdio', `stdio: fd ${fd} is not open`);
    }
    if (dir) fail('stdio', `stdio[${i}] (fd ${fd}) is a directory: the container could leave its root through it`);
  });
  const identity = resolveIdentity(spec, rootfs);
  return {
    id,
    name,
    hostname,
    rootfs,
    cwd,
    command: [...command],
    readOnly: !!spec.readOnly,
    stdio,
    signals,
    init: !!spec.init,
    dieWithParent: spec.dieWithParent !== false,
    namespaces: resolveNamespaces(spec.namespaces),
    identity,
    hardening: resolveHardening(spec, identity.caps.bounding),
    limits: spec.limits === undefined ? null : resolveLimits(spec.limits),
    network: resolveNetwork(spec.network, !!identity.userns && !isPrivileged()),
    env,
  };
}

/** Where execve will look for the command: like execvp, in the container's PATH. */
export function commandCandidates(command: string, env: string[]): string[] {
  if (command.includes('/')) return [command];
  const path = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  return path
    .split(':')
    .filter(Boolean)
    .map((dir) => `${dir.replace(/\/$/, '')}/${command}`);
}
