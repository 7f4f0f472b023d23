// A container's description, checked and completed with defaults before anything is created.
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { NsboxError } from './errors.js';
import { resolveIdentity, type Identity, type IdentitySpec } from './userns/identity.js';
import { resolveLimits, type Limits, type ResolvedLimits } from './cgroups/limits.js';
import { resolveHardening, type Hardening, type HardeningSpec } from './hardening/spec.js';

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

export interface ResolvedSpec extends Required<Omit<ContainerSpec, 'env' | 'namespaces' | 'limits' | keyof IdentitySpec | keyof HardeningSpec>> {
  id: string;
  /** null: none given (no cgroup is made unless the PID namespace is shared). */
  limits: ResolvedLimits | null;
  env: string[];
  namespaces: Required<Namespaces>;
  identity: Identity;
  /** seccomp, mounts, devices, rlimits (src/hardening/spec.ts). */
  hardening: Hardening;
}

const NAMESPACE_KEYS = ['pid', 'net', 'ipc', 'uts', 'cgroup'] as const;

function resolveNamespaces(ns: Namespaces | undefined): Required<Namespaces> {
  const out = { pid: true, net: true, ipc: true, uts: true, cgroup: true };
  for (const [k, v] of Object.entries(ns ?? {})) {
    if (!(NAMESPACE_KEYS as readonly string[]).includes(k)) fail('namespaces', `unknown namespace: ${k} (one of ${NAMESPACE_KEYS.join(', ')})`);
    if (typeof v !== 'boolean') fail('namespaces', `namespaces.${k} must be true (new) or false (the host's)`);
    out[k as keyof Namespaces] = v;
  }
  return out;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)*$/;

function fail(field: string, message: string): never {
  throw new NsboxError(message, { step: field });
}

function resolveRootfs(rootfs: unknown): string {
  if (typeof rootfs !== 'string' || rootfs === '') fail('rootfs', 'rootfs must be a directory or "host"');
  if (rootfs === 'host') return rootfs;
  let st;
  try {
    st = statSync(rootfs);
  } catch {
    fail('rootfs', `rootfs not found: ${rootfs}`);
  }
  if (!st.isDirectory()) fail('rootfs', `rootfs is not a directory: ${rootfs}`);
  return realpathSync(rootfs);
}

/** 12 random hex digits, e.g. a container id (from /dev/urandom: node:crypto takes ~2 ms to load). */
export function randomId(): string {
  const b = Buffer.alloc(6);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, b, 0, 6, null);
  } finally {
    closeSync(fd);
  }
  return b.toString('hex');
}

export function resolveSpec(spec: ContainerSpec): ResolvedSpec {
  if (!spec || typeof spec !== 'object') fail('spec', 'a container spec must be an object');
  const rootfs = resolveRootfs(spec.rootfs);
  const command = spec.command;
  if (!Array.isArray(command) || command.length === 0 || command[0] === '') fail('command', 'no command given');
  if (!command.every((a) => typeof a === 'string')) fail('command', 'command arguments must be strings');
  const id = spec.id ?? randomId();
  if (!/^[0-9a-f]{12}$/.test(id)) fail('id', `invalid container id: ${id} (12 hex digits)`);
  const name = spec.name ?? id;
  if (!NAME_RE.test(name)) fail('name', `invalid container name: ${name} (letters, digits, _ . -; at most 64)`);
  const hostname = spec.hostname ?? name;
  if (hostname.length > 64 || !HOSTNAME_RE.test(hostname)) fail('hostname', `invalid hostname: ${hostname}`);
  const cwd = spec.cwd ?? '/';
  if (!cwd.startsWith('/')) fail('cwd', `working directory must be absolute: ${cwd}`);
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: '/root', HOSTNAME: hostname };
  for (const [k, v] of Object.entries(spec.env ?? {})) {
    if (k === '' || k.includes('=') || k.includes('\0')) fail('env', `invalid environment variable name: ${k}`);
    env[k] = String(v);
  }
  const stdio = spec.stdio ?? [0, 1, 2];
  const identity = resolveIdentity(spec, rootfs);
  return {
    id, name, hostname, rootfs, cwd, command: [...command], readOnly: !!spec.readOnly, stdio,
    dieWithParent: spec.dieWithParent !== false,
    namespaces: resolveNamespaces(spec.namespaces),
    identity,
    hardening: resolveHardening(spec, identity.caps.bounding),
    limits: spec.limits === undefined ? null : resolveLimits(spec.limits),
    env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
  };
}

/** Where execve will look for the command: like execvp, in the container's PATH. */
export function commandCandidates(command: string, env: string[]): string[] {
  if (command.includes('/')) return [command];
  const path = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  return path.split(':').filter(Boolean).map((dir) => `${dir.replace(/\/$/, '')}/${command}`);
}
