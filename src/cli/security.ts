// The run options of hardening: seccomp, volumes, tmpfs, devices, rlimits, masked paths.
import { NsboxError } from '../errors.js';
import type { OptionDef } from './args.js';
import { parseDevice } from '../devices/spec.js';
import type { HardeningSpec } from '../hardening/spec.js';
import { parseUlimit, type UlimitSpec } from '../hardening/rlimits.js';
import type { MountSpec, TmpfsMountSpec } from '../rootfs/mounts.js';

export const SECURITY_HELP = `  -v, --volume HOST:DIR[:ro]
                         bind a host file or directory (repeatable)
      --mount type=bind,src=HOST,dst=DIR[,ro] | type=tmpfs,dst=DIR[,tmpfs-size=64m][,tmpfs-mode=1777]
                         a mount, docker's syntax (repeatable)
      --tmpfs DIR[:size=64m,mode=1777,ro,exec,suid,dev]
                         a tmpfs (noexec, nosuid, nodev unless asked) (repeatable)
      --device HOST[:DIR][:rwm]
                         add a host device (repeatable)
      --ulimit NAME=SOFT[:HARD]
                         an rlimit, e.g. nofile=1024:4096 (repeatable; default nofile=1024:524288)
      --seccomp PROFILE  default (Docker's), unconfined, or a Docker/OCI profile JSON file
      --unmask-paths     leave /proc/kcore, /proc/sys, ... unmasked and writable (dangerous)`;

export const SECURITY_OPTIONS: OptionDef[] = [
  { long: 'volume', short: 'v', value: 'multiple' },
  { long: 'mount', value: 'multiple' },
  { long: 'tmpfs', value: 'multiple' },
  { long: 'device', value: 'multiple' },
  { long: 'ulimit', value: 'multiple' },
  { long: 'seccomp', value: 'single' },
  { long: 'unmask-paths' },
];

function bad(message: string): never {
  throw new NsboxError(message);
}

/** -v HOST:DIR[:ro|rw] */
export function parseVolume(arg: string): MountSpec {
  const parts = arg.split(':');
  if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '')
    bad(`invalid --volume value: ${arg} (expected HOST:DIR[:ro])`);
  const [source, target, opts = ''] = parts;
  if (!source.startsWith('/'))
    bad(`invalid --volume value: ${arg} (the host path must be absolute; named volumes are not supported)`);
  let readOnly = false;
  for (const o of opts.split(',').filter(Boolean)) {
    if (o === 'ro' || o === 'rw') readOnly = o === 'ro';
    else bad(`invalid --volume option: ${o} (ro or rw)`);
  }
  return { type: 'bind', source, target, readOnly };
}

/** --tmpfs DIR[:opt,opt] */
export function parseTmpfs(arg: string): MountSpec {
  const colon = arg.indexOf(':');
  const target = colon < 0 ? arg : arg.slice(0, colon);
  const m: TmpfsMountSpec = { type: 'tmpfs', target };
  for (const o of (colon < 0 ? '' : arg.slice(colon + 1)).split(',').filter(Boolean)) {
    const [k, v] = o.split('=', 2);
    if (k === 'size' && v) m.size = v;
    else if (k === 'mode' && v && /^[0-7]{1,4}$/.test(v)) m.mode = parseInt(v, 8);
    else if (v === undefined && ['ro', 'rw', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev'].includes(k)) {
      if (k === 'ro' || k === 'rw') m.readOnly = k === 'ro';
      else if (k.startsWith('no')) m[k.slice(2) as 'exec' | 'suid' | 'dev'] = false;
      else m[k as 'exec' | 'suid' | 'dev'] = true;
    } else bad(`invalid --tmpfs option: ${o} (size=, mode=, ro, rw, [no]exec, [no]suid, [no]dev)`);
  }
  return m;
}

/** --mount type=bind,src=..,dst=..[,ro] | type=tmpfs,dst=..[,tmpfs-size=..][,tmpfs-mode=..] */
export function parseMount(arg: string): MountSpec {
  const kv = new Map<string, string>();
  for (const part of arg.split(',')) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq),
      v = eq < 0 ? 'true' : part.slice(eq + 1);
    if (!k) bad(`invalid --mount value: ${arg}`);
    const key = { source: 'src', destination: 'dst', target: 'dst', readonly: 'ro' }[k] ?? k;
    if (kv.has(key)) bad(`invalid --mount value: ${arg} (${k} given twice)`);
    kv.set(key, v);
  }
  const type = kv.get('type'),
    dst = kv.get('dst');
  if (!dst) bad(`invalid --mount value: ${arg} (dst= is required)`);
  const ro = kv.get('ro');
  if (ro !== undefined && !['true', 'false', '1', '0'].includes(ro))
    bad(`invalid --mount value: ${arg} (ro takes true or false)`);
  const readOnly = ro === 'true' || ro === '1';
  const known = (keys: string[]) => {
    for (const k of kv.keys())
      if (!keys.includes(k)) bad(`invalid --mount value: ${arg} (unknown key ${k} for type=${type})`);
  };
  if (type === 'bind') {
    known(['type', 'src', 'dst', 'ro']);
    const src = kv.get('src');
    if (!src) bad(`invalid --mount value: ${arg} (src= is required for a bind mount)`);
    if (!src.startsWith('/')) bad(`invalid --mount value: ${arg} (src must be an absolute host path)`);
    return { type: 'bind', source: src, target: dst, readOnly };
  }
  if (type === 'tmpfs') {
    known(['type', 'dst', 'ro', 'tmpfs-size', 'tmpfs-mode']);
    const m: TmpfsMountSpec = { type: 'tmpfs', target: dst, readOnly };
    if (kv.has('tmpfs-size')) m.size = kv.get('tmpfs-size');
    const mode = kv.get('tmpfs-mode');
    if (mode !== undefined) {
      if (!/^[0-7]{1,4}$/.test(mode)) bad(`invalid --mount value: ${arg} (tmpfs-mode must be octal)`);
      m.mode = parseInt(mode, 8);
    }
    return m;
  }
  bad(`invalid --mount value: ${arg} (type must be bind or tmpfs)`);
}

/** The spec fields the options ask for. */
export function securityFromOptions(o: Record<string, string | string[] | boolean>): HardeningSpec {
  const spec: HardeningSpec = {};
  const list = (k: string) => (o[k] as string[] | undefined) ?? [];
  const mounts = [
    ...list('volume').map(parseVolume),
    ...list('mount').map(parseMount),
    ...list('tmpfs').map(parseTmpfs),
  ];
  if (mounts.length) spec.mounts = mounts;
  if (list('device').length)
    spec.devices = list('device').map((d) => {
      try {
        return parseDevice(d);
      } catch (e) {
        return bad((e as Error).message);
      }
    });
  if (list('ulimit').length) {
    const u: UlimitSpec = {};
    for (const x of list('ulimit')) {
      try {
        parseUlimit(x, u);
      } catch (e) {
        bad((e as Error).message);
      }
    }
    spec.ulimits = u;
  }
  if (o.seccomp !== undefined) spec.seccomp = o.seccomp as string;
  if (o['unmask-paths']) spec.maskPaths = false;
  return spec;
}
