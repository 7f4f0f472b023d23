// An OCI bundle's config.json read into nsbox's ContainerSpec and the OCI part's extras. The file is
// hostile: bounded in size, every field type-checked, an error names the JSON path. A field nsbox
// does not apply is ignored with a --debug line when that is harmless, an error when ignoring it
// would weaken isolation.
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
} from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { posix, resolve } from 'node:path';
import { NsboxError } from '../errors.js';
import { MS } from '../native.js';
import type { ContainerSpec, Namespaces } from '../spec.js';
import type { MountSpec } from '../rootfs/mounts.js';
import type { UlimitSpec } from '../hardening/rlimits.js';
import type { DeviceSpec } from '../devices/spec.js';
import type { SeccompProfile } from '../seccomp/profile.js';
import type { IdRange } from '../userns/idmap.js';
import { parseResources } from './resources.js';

/** A config.json larger than this is refused (runc's own limit is none; a real one is a few KiB). */
export const MAX_CONFIG = 4 << 20;

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { [k: string]: Json };

export type NsType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';

/** A mount of the config beyond what nsbox makes itself, with the attributes MountSpec lacks. */
export interface OciMount {
  spec: MountSpec;
  nosuid: boolean;
  noexec: boolean;
  /** A propagation option (shared, slave, unbindable; private is what it is anyway) and whether recursive. */
  propagation?: { kind: number; recursive: boolean };
  /** An idmapped bind (the mount's uidMappings/gidMappings, or the idmap option with the container's maps). */
  idmap?: { uid: IdRange[]; gid: IdRange[] };
}

export interface OciConfig {
  ociVersion: string;
  /** The container's spec (stdio and id are the runtime's). */
  spec: ContainerSpec;
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  mounts: OciMount[];
  /** Beyond nsbox's defaults (which are always masked and read-only). */
  maskedPaths: string[];
  readonlyPaths: string[];
  sysctl: [string, string][];
  /** A new time namespace: made by the child before exec (exec enters it), with these offsets written first
   *  (/proc/self/timens_offsets: "CLOCK SECS NANOS" lines). Absent: no new time namespace. */
  timeNs?: string;
  /** linux.personality's domain when it is not plain LINUX. */
  personality?: 'LINUX32';
  oomScoreAdj?: number;
  umask?: number;
  domainname?: string;
  /** linux.rootfsPropagation as mount(2) flags for the container's / (undefined: private, nsbox's own). */
  rootfsPropagation?: number;
  /** linux.devices of type p: FIFOs made in /dev. */
  fifos: { path: string; mode: number; uid: number; gid: number }[];
  /** Namespaces joined by path. */
  joins: { type: NsType; path: string }[];
  /** From the hierarchy's root, e.g. /machine.slice/libpod-ID.scope; undefined: the runtime's default. */
  cgroupsPath?: string;
  annotations: Record<string, string>;
  hooks: Hooks;
}

export interface Hook {
  path: string;
  args: string[];
  env: string[];
  timeout?: number;
}
export const HOOK_KINDS = [
  'prestart',
  'createRuntime',
  'createContainer',
  'startContainer',
  'poststart',
  'poststop',
] as const;
export type Hooks = Partial<Record<(typeof HOOK_KINDS)[number], Hook[]>>;

export type Debug = (line: string) => void;

export class Reader {
  constructor(readonly debug: Debug) {}

  fail(path: string, message: string): never {
    throw new NsboxError(`config.json: ${path}: ${message}`, { field: path, kind: 'spec' });
  }

  /**
   * An object with the keys nsbox applies (`known`), those it may ignore (`harmless`) and the spec's
   * keys it cannot apply (`refused`: an error). Any other key is not the spec's (a later version's, or
   * a vendor's): ignored, as the spec's extensibility rule says, with a --debug line.
   */
  obj(
    v: Json | undefined,
    path: string,
    known: readonly string[],
    harmless: readonly string[] = [],
    refused: readonly string[] = [],
  ): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, 'must be an object');
    for (const k of Object.keys(v)) {
      if (known.includes(k)) continue;
      if (refused.includes(k)) this.fail(`${path}.${k}`, 'not supported by nsbox-runtime');
      this.debug(`config.json: ${path}.${k}: ${harmless.includes(k) ? 'ignored' : 'unknown property, ignored'}`);
    }
    return v;
  }

  str(v: Json | undefined, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'must be a string');
    if (v.includes('\0')) this.fail(path, 'contains a NUL byte');
    return v;
  }

  bool(v: Json | undefined, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, 'must be true or false');
    return v;
  }

  int(v: Json | undefined, path: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(path, `must be a whole number from ${min} to ${max}`);
    }
    return v;
  }

  arr(v: Json | undefined, path: string): Json[] {
    if (!Array.isArray(v)) this.fail(path, 'must be a list');
    return v;
  }

  strs(v: Json | undefined, path: string): string[] {
    return this.arr(v, path).map((x, i) => this.str(x, `${path}[${i}]`));
  }

  abs(v: Json | undefined, path: string): string {
    const s = this.str(v, path);
    if (!s.startsWith('/')) this.fail(path, `must be an absolute path, got ${JSON.stringify(s)}`);
    return s;
  }
}

/** Reads BUNDLE/config.json: a regular file, at most MAX_CONFIG bytes. */
export function readConfigFile(bundle: string): unknown {
  const path = `${bundle}/config.json`;
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (e) {
    throw new NsboxError(`cannot read ${path}: ${(e as Error).message}`, { field: 'config.json' });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NsboxError(`${path} is not a regular file`, { field: 'config.json' });
    if (st.size > MAX_CONFIG)
      throw new NsboxError(`${path} is too large (${st.size} bytes; at most ${MAX_CONFIG})`, { field: 'config.json' });
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    for (let r: number; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n > st.size) throw new NsboxError(`${path} grew while it was read`, { field: 'config.json' });
    try {
      return JSON.parse(buf.subarray(0, n).toString('utf8'));
    } catch (e) {
      throw new NsboxError(`${path}: invalid JSON: ${(e as Error).message}`, { field: 'config.json' });
    }
  } finally {
    closeSync(fd);
  }
}

export function loadConfig(bundle: string, debug: Debug = () => {}): OciConfig {
  return parseConfig(readConfigFile(bundle), bundle, debug);
}

const RLIMITS = [
  'CPU',
  'FSIZE',
  'DATA',
  'STACK',
  'CORE',
  'RSS',
  'NPROC',
  'NOFILE',
  'MEMLOCK',
  'AS',
  'LOCKS',
  'SIGPENDING',
  'MSGQUEUE',
  'NICE',
  'RTPRIO',
  'RTTIME',
];
const CAP_SETS = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const;
const NS_TYPES: NsType[] = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];
const MAX_ID = 2 ** 32 - 2;
/** rlimit values at or above 2^63 (RLIM_INFINITY is 2^64-1) are unlimited. */
const rlimitValue = (v: number) => (v >= 2 ** 63 ? -1 : v);

/** Mounts nsbox makes itself at these places (type, destination). */
const STANDARD_MOUNTS = new Set([
  'proc /proc',
  'tmpfs /dev',
  'devpts /dev/pts',
  'mqueue /dev/mqueue',
  'sysfs /sys',
  'cgroup /sys/fs/cgroup',
  'cgroup2 /sys/fs/cgroup',
]);
/** Mount options that nsbox applies anyway, or whose absence only makes a mount stricter. */
const IGNORED_OPTIONS = new Set([
  'rw',
  'nodev',
  'dev',
  'private',
  'rprivate',
  'slave',
  'rslave',
  'shared',
  'rshared',
  'unbindable',
  'runbindable',
  'z',
  'Z',
  'noatime',
  'relatime',
  'strictatime',
  'nodiratime',
  'atime',
  'diratime',
  'norelatime',
  'tmpcopyup',
  'notmpcopyup',
  'sync',
  'async',
  'nosymfollow',
  'U',
  'copy-symlink',
]);
const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  slave: MS.SLAVE,
  shared: MS.SHARED,
  unbindable: MS.UNBINDABLE,
};
/** sysctls a container may set, and the namespace that makes them its own (as runc checks). */
const SYSCTL_NS: [RegExp, keyof Namespaces][] = [
  [/^kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)$/, 'ipc'],
  [/^fs\.mqueue\.[a-z_]+$/, 'ipc'],
  [/^net\.[a-zA-Z0-9_.-]+$/, 'net'],
  [/^kernel\.(hostname|domainname)$/, 'uts'],
];

/** config.json (parsed JSON) → nsbox's spec and the OCI part's extras. */
export function parseConfig(json: unknown, bundle: string, debug: Debug = () => {}): OciConfig {
  const r: Reader = new Reader(debug);
  const top = r.obj(
    json as Json,
    '$',
    ['ociVersion', 'process', 'root', 'hostname', 'domainname', 'mounts', 'hooks', 'annotations', 'linux'],
    ['solaris', 'windows', 'vm', 'zos'],
  );
  const ociVersion = r.str(top.ociVersion, '$.ociVersion');
  if (!/^1\.\d+\.\d+/.test(ociVersion))
    r.fail('$.ociVersion', `unsupported version ${JSON.stringify(ociVersion)} (1.x)`);
  if (top.process === undefined) r.fail('$.process', 'missing (nsbox-runtime starts a process)');
  const proc = r.obj(
    top.process,
    '$.process',
    [
      'args',
      'env',
      'cwd',
      'user',
      'capabilities',
      'rlimits',
      'noNewPrivileges',
      'terminal',
      'consoleSize',
      'oomScoreAdj',
      'apparmorProfile',
      'selinuxLabel',
    ],
    ['commandLine', 'ioPriority', 'scheduler', 'execCPUAffinity'],
  );
  for (const k of ['apparmorProfile', 'selinuxLabel'] as const) {
    if (proc[k] !== undefined) debug(`config.json: $.process.${k}: ignored (${r.str(proc[k], `$.process.${k}`)})`);
  }
  const args = r.strs(proc.args, '$.process.args');
  if (args.length === 0 || args[0] === '') r.fail('$.process.args', 'must name a command');
  const env: Record<string, string> = {};
  r.strs(proc.env ?? [], '$.process.env').forEach((e, i) => {
    const eq = e.indexOf('=');
    if (eq <= 0) r.fail(`$.process.env[${i}]`, `expected NAME=VALUE, got ${JSON.stringify(e)}`);
    env[e.slice(0, eq)] = e.slice(eq + 1);
  });
  const cwd = r.abs(proc.cwd, '$.process.cwd');
  const spec: ContainerSpec = {
    rootfs: '',
    command: args,
    env,
    cwd,
    dieWithParent: false,
    seccomp: 'unconfined',
    noNewPrivileges:
      proc.noNewPrivileges === undefined ? false : r.bool(proc.noNewPrivileges, '$.process.noNewPrivileges'),
    capSets: {},
  };
  let umask: number | undefined;
  if (proc.user !== undefined) {
    const u = r.obj(proc.user, '$.process.user', ['uid', 'gid', 'additionalGids', 'umask'], ['username']);
    const uid = r.int(u.uid, '$.process.user.uid', 0, MAX_ID),
      gid = r.int(u.gid, '$.process.user.gid', 0, MAX_ID);
    spec.user = `${uid}:${gid}`;
    if (u.additionalGids !== undefined) {
      spec.groupAdd = r
        .arr(u.additionalGids, '$.process.user.additionalGids')
        .map((g, i) => r.int(g, `$.process.user.additionalGids[${i}]`, 0, MAX_ID));
    }
    if (u.umask !== undefined) umask = r.int(u.umask, '$.process.user.umask', 0, 0o777);
  }
  if (proc.capabilities !== undefined) {
    const c = r.obj(proc.capabilities, '$.process.capabilities', CAP_SETS);
    for (const k of CAP_SETS) if (c[k] !== undefined) spec.capSets![k] = r.strs(c[k], `$.process.capabilities.${k}`);
  }
  if (proc.rlimits !== undefined) {
    const ul: UlimitSpec = {};
    r.arr(proc.rlimits, '$.process.rlimits').forEach((x, i) => {
      const p = `$.process.rlimits[${i}]`;
      const l = r.obj(x, p, ['type', 'soft', 'hard']);
      const type = r.str(l.type, `${p}.type`);
      const name = type.replace(/^RLIMIT_/, '');
      if (!type.startsWith('RLIMIT_') || !RLIMITS.includes(name))
        r.fail(`${p}.type`, `unknown rlimit ${JSON.stringify(type)}`);
      const soft = rlimitValue(r.int(l.soft, `${p}.soft`, 0, 2 ** 64));
      const hard = rlimitValue(r.int(l.hard, `${p}.hard`, 0, 2 ** 64));
      if (hard !== -1 && (soft === -1 || soft > hard)) r.fail(p, 'soft limit above the hard limit');
      ul[name.toLowerCase()] = { soft, hard };
    });
    spec.ulimits = ul;
  }
  const terminal = proc.terminal === undefined ? false : r.bool(proc.terminal, '$.process.terminal');
  let consoleSize: OciConfig['consoleSize'];
  if (proc.consoleSize !== undefined) {
    const s = r.obj(proc.consoleSize, '$.process.consoleSize', ['height', 'width']);
    consoleSize = {
      height: r.int(s.height, '$.process.consoleSize.height', 0, 65535),
      width: r.int(s.width, '$.process.consoleSize.width', 0, 65535),
    };
  }
  const oomScoreAdj =
    proc.oomScoreAdj === undefined ? undefined : r.int(proc.oomScoreAdj, '$.process.oomScoreAdj', -1000, 1000);

  const root = r.obj(top.root, '$.root', ['path', 'readonly']);
  const rootPath = resolve(bundle, r.str(root.path, '$.root.path'));
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(rootPath);
  } catch {
    r.fail('$.root.path', `not found: ${rootPath}`);
  }
  if (!st.isDirectory()) r.fail('$.root.path', `not a directory: ${rootPath}`);
  spec.rootfs = rootPath;
  if (root.readonly !== undefined) spec.readOnly = r.bool(root.readonly, '$.root.readonly');

  const linux = r.obj(
    top.linux ?? {},
    '$.linux',
    [
      'namespaces',
      'uidMappings',
      'gidMappings',
      'devices',
      'cgroupsPath',
      'resources',
      'rootfsPropagation',
      'seccomp',
      'sysctl',
      'maskedPaths',
      'readonlyPaths',
      'mountLabel',
    ],
    ['personality', 'timeOffsets'],
    ['netDevices', 'intelRdt', 'memoryPolicy'],
  );
  if (linux.mountLabel !== undefined)
    debug(`config.json: $.linux.mountLabel: ignored (${r.str(linux.mountLabel, '$.linux.mountLabel')})`);
  let personality: 'LINUX32' | undefined;
  if (linux.personality !== undefined) {
    const p = r.obj(linux.personality, '$.linux.personality', ['domain', 'flags']);
    const domain = r.str(p.domain, '$.linux.personality.domain');
    if (domain !== 'LINUX' && domain !== 'LINUX32')
      r.fail('$.linux.personality.domain', `unknown domain ${JSON.stringify(domain)} (LINUX, LINUX32)`);
    if (p.flags !== undefined && r.arr(p.flags, '$.linux.personality.flags').length)
      r.fail('$.linux.personality.flags', 'not supported (as runc)');
    if (domain === 'LINUX32') personality = domain;
  }
  let rootfsPropagation: number | undefined;
  if (linux.rootfsPropagation !== undefined && linux.rootfsPropagation !== '') {
    const p = r.str(linux.rootfsPropagation, '$.linux.rootfsPropagation');
    const kind = PROPAGATION[p.replace(/^r/, '')];
    if (kind === undefined) r.fail('$.linux.rootfsPropagation', `unknown propagation ${JSON.stringify(p)}`);
    // The root's mounts are private already (a slave of nothing is private too).
    if (kind !== MS.PRIVATE && kind !== MS.SLAVE) rootfsPropagation = kind | (p.startsWith('r') ? MS.REC : 0);
  }

  // Namespaces: the listed ones are new (or joined by path), the rest the host's.
  const nsList = r.arr(linux.namespaces ?? [], '$.linux.namespaces');
  const isNew = new Set<NsType>();
  const joins: OciConfig['joins'] = [];
  nsList.forEach((x, i) => {
    const p = `$.linux.namespaces[${i}]`;
    const n = r.obj(x, p, ['type', 'path']);
    const type = r.str(n.type, `${p}.type`) as NsType;
    if (!NS_TYPES.includes(type)) r.fail(`${p}.type`, `unknown namespace ${JSON.stringify(type)}`);
    if (isNew.has(type) || joins.some((j) => j.type === type)) r.fail(`${p}.type`, `namespace ${type} listed twice`);
    if (n.path !== undefined && n.path !== '') {
      const path = r.abs(n.path, `${p}.path`);
      if (type === 'time') r.fail(`${p}.path`, 'joining a time namespace is not supported');
      joins.push({ type, path });
    } else isNew.add(type);
  });
  const joined = (t: NsType) => joins.some((j) => j.type === t);
  if (!isNew.has('mount') && !joined('mount'))
    r.fail('$.linux.namespaces', "a mount namespace is required (new, or joined by path): nsbox never uses the host's");
  // A new pid namespace would be the host user namespace's, where root of the joined one cannot mount /proc.
  if (joined('user') && !joined('pid'))
    r.fail('$.linux.namespaces', 'with a joined user namespace, the pid namespace must be joined by path too');
  const timeNs = isNew.has('time') ? parseTimeOffsets(r, linux.timeOffsets) : undefined;
  if (!isNew.has('time') && linux.timeOffsets !== undefined)
    r.fail('$.linux.timeOffsets', 'needs a new time namespace in $.linux.namespaces');
  spec.namespaces = {
    pid: isNew.has('pid'),
    net: isNew.has('network'),
    ipc: isNew.has('ipc'),
    uts: isNew.has('uts'),
    cgroup: isNew.has('cgroup'),
  };
  const idMap = (key: 'uidMappings' | 'gidMappings') => parseIdRanges(r, linux[key], `$.linux.${key}`);
  // The container's own maps, also for a mount's idmap option without mappings of its own.
  let userMaps: OciMount['idmap'];
  if (isNew.has('user')) {
    const uidMap = linux.uidMappings === undefined ? undefined : idMap('uidMappings');
    const gidMap = linux.gidMappings === undefined ? undefined : idMap('gidMappings');
    if (!uidMap || !gidMap) r.fail(`$.linux.${uidMap ? 'gid' : 'uid'}Mappings`, 'required with a new user namespace');
    spec.userns = { uidMap, gidMap };
    userMaps = { uid: uidMap, gid: gidMap };
  } else {
    spec.userns = false;
    for (const k of ['uidMappings', 'gidMappings'] as const) {
      if (linux[k] !== undefined && r.arr(linux[k], `$.linux.${k}`).length)
        r.fail(
          `$.linux.${k}`,
          joined('user') ? 'given with a joined user namespace' : 'given without a user namespace',
        );
    }
  }

  const hn = top.hostname === undefined ? undefined : r.str(top.hostname, '$.hostname');
  if (hn && !isNew.has('uts')) r.fail('$.hostname', 'needs a new uts namespace');
  spec.hostname = hn || osHostname();
  const domainname = top.domainname === undefined ? undefined : r.str(top.domainname, '$.domainname');
  if (domainname && !isNew.has('uts')) r.fail('$.domainname', 'needs a new uts namespace');

  const mounts = parseMounts(r, top.mounts ?? [], bundle, userMaps);
  const paths = (key: 'maskedPaths' | 'readonlyPaths') =>
    r.arr(linux[key] ?? [], `$.linux.${key}`).map((x, i) => posix.normalize(r.abs(x, `$.linux.${key}[${i}]`)));

  const sysctl: [string, string][] = [];
  if (linux.sysctl !== undefined) {
    const o = r.obj(linux.sysctl, '$.linux.sysctl', Object.keys(linux.sysctl as Obj));
    for (const [k, v] of Object.entries(o)) {
      const p = `$.linux.sysctl[${JSON.stringify(k)}]`;
      const value = r.str(v, p);
      const rule = SYSCTL_NS.find(([re]) => re.test(k) && !k.includes('..'));
      if (!rule) r.fail(p, 'not a namespaced sysctl a container may set');
      const type: NsType = rule[1] === 'net' ? 'network' : (rule[1] as NsType);
      if (!spec.namespaces[rule[1]] && !joins.some((j) => j.type === type))
        r.fail(p, `needs a ${type} namespace of the container's own`);
      sysctl.push([k, value]);
    }
  }

  let cgroupsPath: string | undefined;
  if (linux.cgroupsPath !== undefined && linux.cgroupsPath !== '')
    cgroupsPath = parseCgroupsPath(r, r.str(linux.cgroupsPath, '$.linux.cgroupsPath'));
  let ruleDevices: DeviceSpec[] = [];
  if (linux.resources !== undefined) {
    const { devices, ...limits } = parseResources(r, linux.resources, deviceRules);
    spec.limits = limits;
    ruleDevices = devices ?? [];
  }
  const fifos: OciConfig['fifos'] = [];
  if (linux.devices !== undefined) {
    const userns = !!spec.userns || joined('user');
    spec.devices = parseDevices(r, linux.devices, userns, fifos);
  }
  if (ruleDevices.length) spec.devices = [...(spec.devices ?? []), ...ruleDevices];
  if (linux.seccomp !== undefined) spec.seccomp = parseSeccomp(r, linux.seccomp);
  else debug('config.json: no $.linux.seccomp: the container runs without a seccomp filter');

  const annotations: Record<string, string> = {};
  if (top.annotations !== undefined) {
    for (const [k, v] of Object.entries(r.obj(top.annotations, '$.annotations', Object.keys(top.annotations as Obj)))) {
      annotations[k] = r.str(v, `$.annotations[${JSON.stringify(k)}]`);
    }
  }
  return {
    ociVersion,
    spec,
    terminal,
    consoleSize,
    mounts,
    maskedPaths: paths('maskedPaths'),
    readonlyPaths: paths('readonlyPaths'),
    sysctl,
    timeNs,
    personality,
    oomScoreAdj,
    umask,
    domainname: domainname || undefined,
    rootfsPropagation,
    fifos,
    joins,
    cgroupsPath,
    annotations,
    hooks: parseHooks(r, top.hooks),
  };
}

function parseHooks(r: Reader, v: Json | undefined): Hooks {
  if (v === undefined) return {};
  const o = r.obj(v, '$.hooks', HOOK_KINDS);
  const out: Hooks = {};
  for (const kind of HOOK_KINDS) {
    if (o[kind] === undefined) continue;
    out[kind] = r.arr(o[kind], `$.hooks.${kind}`).map((x, i) => {
      const p = `$.hooks.${kind}[${i}]`;
      const h = r.obj(x, p, ['path', 'args', 'env', 'timeout']);
      return {
        path: r.abs(h.path, `${p}.path`),
        args: h.args === undefined ? [] : r.strs(h.args, `${p}.args`),
        env: h.env === undefined ? [] : r.strs(h.env, `${p}.env`),
        timeout: h.timeout === undefined ? undefined : r.int(h.timeout, `${p}.timeout`, 1, 86400),
      };
    });
  }
  return out;
}

/** `/a/b` as it is; systemd's `slice:prefix:name` as /slice-path/prefix-name.scope (as runc maps it). */
function parseCgroupsPath(r: Reader, s: string): string {
  let path = s;
  const sd = /^([^:/]*):([^:/]*):([^:/]+)$/.exec(s);
  if (sd) {
    const slice = sd[1] || 'system.slice';
    if (!slice.endsWith('.slice')) r.fail('$.linux.cgroupsPath', `not a systemd slice: ${slice}`);
    // a-b-c.slice lives in a.slice/a-b.slice/a-b-c.slice
    const parts = slice.slice(0, -6).split('-');
    const dirs = slice === '-.slice' ? [] : parts.map((_, i) => `${parts.slice(0, i + 1).join('-')}.slice`);
    const name = sd[3].endsWith('.slice') ? sd[3] : `${sd[2] ? `${sd[2]}-` : ''}${sd[3]}.scope`;
    path = `/${[...dirs, name].join('/')}`;
  } else if (!s.startsWith('/')) path = `/${s}`;
  const norm = posix.normalize(path);
  if (norm !== path || path.split('/').some((c) => c === '..' || c === '.') || path === '/' || path.endsWith('/')) {
    r.fail('$.linux.cgroupsPath', `invalid path ${JSON.stringify(s)}`);
  }
  return path;
}

/**
 * resources.devices: nsbox starts from "deny all" with its default devices allowed; the config's allow
 * rules for character or block devices are added (podman's --device, runtime-tools' rules). Deny rules
 * and "all devices" are left out with a --debug line: what they would change is stricter or wider than
 * nsbox's base (a wider one, privileged's, is not given by this path).
 */
function deviceRules(r: Reader, v: Json): DeviceSpec[] {
  const out: DeviceSpec[] = [];
  r.arr(v, '$.linux.resources.devices').forEach((x, i) => {
    const p = `$.linux.resources.devices[${i}]`;
    const d = r.obj(x, p, ['allow', 'type', 'major', 'minor', 'access']);
    const allow = r.bool(d.allow, `${p}.allow`);
    const type = d.type === undefined || d.type === null ? 'a' : r.str(d.type, `${p}.type`);
    if (!['a', 'c', 'b'].includes(type)) r.fail(`${p}.type`, `must be a, c or b, got ${JSON.stringify(type)}`);
    const num = (v: Json | undefined, k: string) =>
      v === undefined || v === null ? -1 : r.int(v, `${p}.${k}`, -1, k === 'major' ? 0xfff : 0xfffff);
    const [major, minor] = [num(d.major, 'major'), num(d.minor, 'minor')];
    const access = d.access === undefined ? 'rwm' : r.str(d.access, `${p}.access`);
    if (!/^(?!.*(.).*\1)[rwm]{0,3}$/.test(access))
      r.fail(`${p}.access`, `must be letters of rwm, got ${JSON.stringify(access)}`);
    if (!allow || type === 'a' || access === '') {
      r.debug(`config.json: ${p}: ${allow ? 'all devices' : 'a deny rule'}: nsbox's base rules apply`);
      return;
    }
    out.push({ host: '', access, node: { type: type as 'c' | 'b', major, minor } });
  });
  return out;
}

const devEntries = (): string[] => {
  try {
    return readdirSync('/dev').map((n) => `/dev/${n}`);
  } catch {
    return [];
  }
};

const DEFAULT_DEVICES = [
  '/dev/null',
  '/dev/zero',
  '/dev/full',
  '/dev/random',
  '/dev/urandom',
  '/dev/tty',
  '/dev/console',
  '/dev/ptmx',
];

/**
 * linux.devices: made in /dev with the config's number, mode and owner (as runc makes them); in a user
 * namespace, where mknod is refused, or outside /dev, the host's node of that number bound in.
 */
function parseDevices(r: Reader, v: Json, userns: boolean, fifos: OciConfig['fifos']): DeviceSpec[] {
  const out: DeviceSpec[] = [];
  r.arr(v, '$.linux.devices').forEach((x, i) => {
    const p = `$.linux.devices[${i}]`;
    const d = r.obj(x, p, ['path', 'type', 'major', 'minor', 'fileMode', 'uid', 'gid']);
    const path = posix.normalize(r.abs(d.path, `${p}.path`));
    const type = r.str(d.type, `${p}.type`);
    if (!['c', 'u', 'b', 'p'].includes(type))
      r.fail(`${p}.type`, `only c, u, b and p devices are supported, got ${JSON.stringify(type)}`);
    const mode = d.fileMode === undefined ? 0o666 : r.int(d.fileMode, `${p}.fileMode`, 0, 0o7777) & 0o777;
    const uid = d.uid === undefined ? 0 : r.int(d.uid, `${p}.uid`, 0, MAX_ID);
    const gid = d.gid === undefined ? 0 : r.int(d.gid, `${p}.gid`, 0, MAX_ID);
    const underDev = path.startsWith('/dev/') && !/^\/dev\/(pts|shm|mqueue)(\/|$)/.test(path);
    if (type === 'p') {
      if (!underDev) r.fail(`${p}.path`, 'a FIFO must be under /dev');
      fifos.push({ path, mode, uid, gid });
      return;
    }
    const major = r.int(d.major, `${p}.major`, 0, 2 ** 32),
      minor = r.int(d.minor, `${p}.minor`, 0, 2 ** 32);
    if (DEFAULT_DEVICES.includes(path)) return; // nsbox's own
    const kind = type === 'b' ? 'block' : 'char';
    // Allowed whatever resources.devices says, as runc allows the devices it makes.
    const access = 'rwm';
    if (!userns && underDev) {
      if (major > 0xfff || minor > 0xfffff) r.fail(p, `device number ${major}:${minor} out of range`);
      out.push({ host: '', path, access, node: { type: type === 'b' ? 'b' : 'c', major, minor, mode, uid, gid } });
      return;
    }
    // The same path on the host, udev's /dev/char|block/M:m link, else any node of that number in /dev.
    const host = [path, `/dev/${kind}/${major}:${minor}`, ...devEntries()].find((h) => {
      try {
        const st = statSync(h);
        const rdev = st.rdev;
        const maj = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & 0xfffff000),
          min = (rdev & 0xff) | ((rdev >>> 12) & 0xfffff00);
        return (type === 'b' ? st.isBlockDevice() : st.isCharacterDevice()) && maj === major && min === minor;
      } catch {
        return false;
      }
    });
    if (!host) r.fail(p, `no ${kind} device ${major}:${minor} on the host to give as ${path}`);
    if (d.fileMode !== undefined || d.uid !== undefined || d.gid !== undefined)
      r.debug(`config.json: ${p}: fileMode, uid, gid: the host node's apply (it is bound in)`);
    out.push({ host, path, access });
  });
  return out;
}

function parseMounts(r: Reader, v: Json, bundle: string, userMaps?: OciMount['idmap']): OciMount[] {
  const out: OciMount[] = [];
  r.arr(v, '$.mounts').forEach((x, i) => {
    const p = `$.mounts[${i}]`;
    const m = r.obj(x, p, ['destination', 'type', 'source', 'options', 'uidMappings', 'gidMappings']);
    const ranges = (key: 'uidMappings' | 'gidMappings') => parseIdRanges(r, m[key], `${p}.${key}`);
    let idmap: OciMount['idmap'];
    if (m.uidMappings !== undefined || m.gidMappings !== undefined) {
      if (m.uidMappings === undefined || m.gidMappings === undefined)
        r.fail(p, 'an idmapped mount needs both uidMappings and gidMappings');
      idmap = { uid: ranges('uidMappings'), gid: ranges('gidMappings') };
    }
    const dest = posix.normalize(r.abs(m.destination, `${p}.destination`)).replace(/(.)\/+$/, '$1');
    const options = m.options === undefined ? [] : r.strs(m.options, `${p}.options`);
    const bind = options.includes('bind') || options.includes('rbind');
    const type = m.type === undefined ? (bind ? 'bind' : '') : r.str(m.type, `${p}.type`);
    if (STANDARD_MOUNTS.has(`${type} ${dest}`)) return; // nsbox makes these itself
    const flags = { ro: false, nosuid: false, noexec: false, suid: false, exec: false };
    const data: string[] = [];
    let propagation: OciMount['propagation'];
    let wantsIdmap = false;
    for (const o of options) {
      const prop = PROPAGATION[o.replace(/^r/, '')];
      if (prop !== undefined && prop !== MS.PRIVATE) propagation = { kind: prop, recursive: o.startsWith('r') };
      else if (prop === MS.PRIVATE) propagation = undefined;
      if (o in flags) flags[o as keyof typeof flags] = true;
      else if (o === 'idmap') wantsIdmap = true;
      else if (o === 'ridmap') r.fail(`${p}.options`, `recursive idmapped mounts are not supported (on ${dest})`);
      else if (o === 'bind' || o === 'rbind' || IGNORED_OPTIONS.has(o)) continue;
      else if (/^(size|mode|nr_inodes|nr_blocks)=/.test(o) && type === 'tmpfs') data.push(o);
      else r.fail(`${p}.options`, `unsupported mount option ${JSON.stringify(o)} (on ${dest})`);
    }
    if (wantsIdmap && !idmap) {
      if (!userMaps) r.fail(`${p}.options`, `idmap without mappings needs a user namespace with maps (on ${dest})`);
      idmap = userMaps;
    }
    if (idmap && !(bind || type === 'bind')) r.fail(p, `only bind mounts can be idmapped (on ${dest})`);
    if (idmap && options.includes('rbind'))
      r.fail(`${p}.options`, `recursive idmapped mounts are not supported: use bind, not rbind (on ${dest})`);
    if (bind || type === 'bind') {
      const src = resolve(bundle, r.str(m.source, `${p}.source`));
      try {
        lstatSync(src);
      } catch {
        r.fail(`${p}.source`, `not found: ${src}`);
      }
      out.push({
        spec: { type: 'bind', source: src, target: dest, readOnly: flags.ro },
        nosuid: flags.nosuid,
        noexec: flags.noexec,
        propagation,
        idmap,
      });
    } else if (type === 'tmpfs') {
      const size = data.find((o) => o.startsWith('size='))?.slice(5);
      const modeText = data.find((o) => o.startsWith('mode='))?.slice(5);
      if (modeText !== undefined && !/^[0-7]{1,4}$/.test(modeText))
        r.fail(`${p}.options`, `invalid tmpfs mode ${JSON.stringify(modeText)}`);
      if (data.some((o) => /^nr_/.test(o))) r.debug(`config.json: ${p}: nr_inodes/nr_blocks ignored`);
      out.push({
        spec: {
          type: 'tmpfs',
          target: dest,
          source: m.source === undefined || m.source === '' ? undefined : r.str(m.source, `${p}.source`),
          size,
          mode: modeText === undefined ? undefined : parseInt(modeText, 8),
          readOnly: flags.ro,
          exec: !flags.noexec,
          suid: !flags.nosuid,
          dev: false,
        },
        nosuid: flags.nosuid,
        noexec: flags.noexec,
        propagation,
      });
    } else {
      r.fail(`${p}.type`, `mount type ${JSON.stringify(type)} on ${dest} is not supported (bind and tmpfs are)`);
    }
  });
  return out;
}

/** A list of LinuxIDMapping (linux.uidMappings, a mount's gidMappings...) as id ranges. */
function parseIdRanges(r: Reader, v: Json | undefined, path: string): IdRange[] {
  return r.arr(v, path).map((x, i) => {
    const p = `${path}[${i}]`;
    const m = r.obj(x, p, ['containerID', 'hostID', 'size']);
    return {
      container: r.int(m.containerID, `${p}.containerID`, 0, MAX_ID),
      host: r.int(m.hostID, `${p}.hostID`, 0, MAX_ID),
      size: r.int(m.size, `${p}.size`, 1, MAX_ID + 1),
    };
  });
}

/** linux.timeOffsets ({ monotonic|boottime: { secs, nanosecs } }) as timens_offsets lines. */
function parseTimeOffsets(r: Reader, v: Json | undefined): string {
  if (v === undefined) return '';
  const o = r.obj(v, '$.linux.timeOffsets', ['monotonic', 'boottime']);
  const CLOCK = { monotonic: 1, boottime: 7 }; // CLOCK_MONOTONIC, CLOCK_BOOTTIME
  let text = '';
  for (const k of ['monotonic', 'boottime'] as const) {
    if (o[k] === undefined) continue;
    const p = `$.linux.timeOffsets.${k}`;
    const t = r.obj(o[k], p, ['secs', 'nanosecs']);
    // The kernel refuses an offset that would take a clock below 0 or past its range (EINVAL at the write).
    const secs = t.secs === undefined ? 0 : r.int(t.secs, `${p}.secs`, -(2 ** 53) + 1, 2 ** 53 - 1);
    const ns = t.nanosecs === undefined ? 0 : r.int(t.nanosecs, `${p}.nanosecs`, 0, 999_999_999);
    text += `${CLOCK[k]} ${secs} ${ns}\n`;
  }
  return text;
}

/** The OCI seccomp object is the Docker profile's shape (src/seccomp/profile.ts checks the rest). */
function parseSeccomp(r: Reader, v: Json): SeccompProfile {
  const s = r.obj(v, '$.linux.seccomp', [
    'defaultAction',
    'defaultErrnoRet',
    'architectures',
    'flags',
    'listenerPath',
    'listenerMetadata',
    'syscalls',
  ]);
  if (s.listenerPath !== undefined && s.listenerPath !== '')
    r.fail('$.linux.seccomp.listenerPath', 'seccomp notify is not supported');
  const { listenerMetadata: _, listenerPath: __, ...profile } = s;
  return profile as unknown as SeccompProfile;
}
