// The shape of a ContainerSpec, checked before anything else looks at it: known fields only,
// each of the right type, no NUL byte in any string. The resolvers (src/spec.ts and what it
// calls) then check the values' meaning; this makes sure they never meet a wrong type.
import { checkName } from './name.js';
import { IDENTITY_KEYS } from './userns/identity.js';
import { HARDENING_KEYS } from './hardening/spec.js';
import { checkNetworkShape } from './network/spec.js';
import {
  bad,
  boolean,
  cString,
  integer,
  isPlainObject,
  kind,
  knownKeys,
  list,
  noNulBytes,
  optString,
} from './check.js';

export const CONTAINER_KEYS = [
  'rootfs',
  'command',
  'env',
  'cwd',
  'name',
  'id',
  'hostname',
  'readOnly',
  'namespaces',
  'stdio',
  'limits',
  'signals',
  'init',
  'dieWithParent',
  'network',
  ...IDENTITY_KEYS,
  ...HARDENING_KEYS,
] as const;

/** The library's own fields (src/sandbox): suggested for a misspelling even where they do not belong. */
const LIBRARY_KEYS = [
  'timeoutMs',
  'cpuTimeLimitMs',
  'signal',
  'input',
  'maxOutputBytes',
  'maxTotalOutputBytes',
  'encoding',
];

const MOUNT_KEYS: Record<string, readonly string[]> = {
  bind: ['type', 'source', 'target', 'readOnly'],
  tmpfs: ['type', 'target', 'source', 'size', 'mode', 'readOnly', 'exec', 'suid', 'dev'],
};

/** At most this many arguments plus environment entries: execve refuses far fewer (E2BIG). */
const MAX_ARGS = 1 << 20;

function object(v: unknown, field: string): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) bad(field, `must be an object, got ${kind(v)}`);
  return v;
}

const numberOrString = (v: unknown, field: string) => {
  if (typeof v === 'string') return cString(v, field, { max: 256 });
  if (typeof v !== 'number') bad(field, `must be a number or a string, got ${kind(v)}`);
  return v;
};

function idMapEntry(v: unknown, field: string): void {
  if (typeof v === 'string') return void cString(v, field, { max: 64 });
  const o = object(v, field);
  if (!o) bad(field, 'must be "CONTAINER:HOST:SIZE" or { container, host, size }');
  knownKeys(o, ['container', 'host', 'size'], field);
  for (const k of ['container', 'host', 'size']) integer(o[k], `${field}.${k}`, 0, 2 ** 32 - 1);
}

function mount(v: unknown, field: string): void {
  const m = object(v, field);
  if (!m) bad(field, 'must be an object');
  const keys = MOUNT_KEYS[m.type as string];
  if (!keys) bad(`${field}.type`, `must be "bind" or "tmpfs", got ${kind(m.type)}`);
  knownKeys(m, keys, field);
  cString(m.target, `${field}.target`);
  if (m.type === 'bind' || m.source !== undefined) cString(m.source, `${field}.source`);
  for (const k of ['readOnly', 'exec', 'suid', 'dev']) boolean(m[k], `${field}.${k}`);
  if (m.size !== undefined) numberOrString(m.size, `${field}.size`);
  if (m.mode !== undefined) integer(m.mode, `${field}.mode`, 0, 0o7777);
}

function device(v: unknown, field: string): void {
  const d = object(v, field);
  if (!d) bad(field, 'must be an object');
  knownKeys(d, ['host', 'path', 'access', 'node'], field);
  if (d.node === undefined) cString(d.host, `${field}.host`);
  else knownKeys(object(d.node, `${field}.node`)!, ['type', 'major', 'minor', 'mode', 'uid', 'gid'], `${field}.node`);
  optString(d.path, `${field}.path`);
  optString(d.access, `${field}.access`, { max: 3 });
}

/** Checks field names and types of a container spec (`extra`: fields a wrapper handles itself). */
export function checkSpecShape(spec: unknown, extra: readonly string[] = []): asserts spec is Record<string, unknown> {
  if (!isPlainObject(spec)) bad('spec', `must be an object, got ${kind(spec)}`);
  knownKeys(spec, [...CONTAINER_KEYS, ...extra], undefined, LIBRARY_KEYS);
  const s = spec;
  cString(s.rootfs, 'rootfs');
  const command = list(s.command, 'command', (a, f) => cString(a, f, { empty: true, max: 128 * 1024 }), MAX_ARGS);
  if (!command || command.length === 0) bad('command', 'no command given');
  if (command[0] === '') bad('command[0]', 'must not be empty');
  const env = object(s.env, 'env');
  if (env) {
    if (Object.keys(env).length > MAX_ARGS) bad('env', 'too many variables');
    for (const [k, v] of Object.entries(env)) {
      if (k === '' || k.includes('=') || k.includes('\0')) bad('env', `invalid variable name ${JSON.stringify(k)}`);
      cString(v, `env.${k}`, { empty: true, max: 128 * 1024 });
    }
  }
  optString(s.cwd, 'cwd');
  if (s.name !== undefined) checkName(s.name); // the one name check (src/spec.ts), before anything is made
  optString(s.id, 'id', { max: 64 });
  optString(s.hostname, 'hostname', { max: 256 });
  for (const k of ['readOnly', 'noNewPrivileges', 'privileged', 'maskPaths', 'init', 'dieWithParent']) boolean(s[k], k);
  optString(s.signals, 'signals', { max: 16 });
  object(s.namespaces, 'namespaces');
  if (s.stdio !== undefined) {
    const fds = list(s.stdio, 'stdio', (fd, f) => integer(fd, f, 0, 2 ** 31 - 1));
    if (fds!.length !== 3) bad('stdio', `must be three fds (stdin, stdout, stderr), got ${fds!.length}`);
  }
  if (s.limits !== undefined && !isPlainObject(s.limits)) bad('limits', `must be an object, got ${kind(s.limits)}`);
  // Structured limits (blockIO, hugepages, unified...) are checked by resolveLimits.
  const structured = ['oomKillDisable', 'blockIO', 'hugepages', 'netPriorities', 'rdma', 'unified'];
  for (const [k, v] of Object.entries(s.limits ?? {}))
    if (v !== undefined && !structured.includes(k)) numberOrString(v, `limits.${k}`);
  if (s.userns !== undefined && typeof s.userns !== 'boolean') {
    const o = object(s.userns, 'userns')!;
    knownKeys(o, ['uidMap', 'gidMap'], 'userns');
    list(o.uidMap, 'userns.uidMap', idMapEntry, 340);
    list(o.gidMap, 'userns.gidMap', idMapEntry, 340);
  }
  if (s.user !== undefined) numberOrString(s.user, 'user');
  list(s.groupAdd, 'groupAdd', numberOrString, 64);
  list(s.capAdd, 'capAdd', (c, f) => cString(c, f, { max: 64 }), 128);
  list(s.capDrop, 'capDrop', (c, f) => cString(c, f, { max: 64 }), 128);
  if (s.seccomp !== undefined && typeof s.seccomp !== 'string' && !isPlainObject(s.seccomp)) {
    bad('seccomp', `must be 'default', 'unconfined', a profile file or a profile object, got ${kind(s.seccomp)}`);
  }
  if (typeof s.seccomp === 'string') cString(s.seccomp, 'seccomp');
  list(s.mounts, 'mounts', mount, 1024);
  list(s.devices, 'devices', device, 1024);
  checkNetworkShape(s.network);
  for (const [k, v] of Object.entries(object(s.ulimits, 'ulimits') ?? {})) {
    if (isPlainObject(v)) {
      knownKeys(v, ['soft', 'hard'], `ulimits.${k}`);
      numberOrString(v.soft, `ulimits.${k}.soft`);
      if (v.hard !== undefined) numberOrString(v.hard, `ulimits.${k}.hard`);
    } else numberOrString(v, `ulimits.${k}`);
  }
  // Anything left (namespaces, limits, ulimits, a seccomp object): no NUL byte anywhere.
  for (const k of Object.keys(s)) if (!extra.includes(k)) noNulBytes(s[k], k);
}
