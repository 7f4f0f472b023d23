// The `network` field of a container spec, checked before anything is made.
import { bad, cString, isPlainObject, kind, knownKeys, list, optString } from '../check.js';
import { NsboxError } from '../errors.js';
import { checkPort, type PortSpec } from './ports.js';

export interface NetworkSpec {
  /**
   * 'none' (the default: only lo), 'bridge' (nsbox's default network), a network's name, 'host',
   * 'container:NAME' (share that container's namespace), 'pasta' (user-mode, the rootless way).
   */
  mode?: string;
  /** Published ports; with no mode given they imply 'bridge' (root) or 'pasta' (rootless). */
  ports?: PortSpec[];
  /** More names this container has on its network. */
  aliases?: string[];
  /** Nameservers for /etc/resolv.conf instead of the host's. */
  dns?: string[];
  /** Extra /etc/hosts lines, "NAME:IP" or { name, ip }. */
  addHosts?: (string | { name: string; ip: string })[];
}

export type NetworkMode = 'none' | 'bridge' | 'host' | 'container' | 'pasta' | 'slirp4netns';

export interface ResolvedNetwork {
  mode: NetworkMode;
  /** bridge: the network's name. container: the container's name or id. */
  target: string;
  ports: Required<Omit<PortSpec, 'hostIp'>>[] & { hostIp?: string }[];
  aliases: string[];
  dns: string[];
  addHosts: { name: string; ip: string }[];
  /** pasta chosen for a rootless run (not asked for): slirp4netns may stand in where pasta is missing. */
  implied?: boolean;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const IP_RE = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/;

function fail(msg: string): never {
  throw new NsboxError(msg, { step: 'network' });
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(`network.${what} must be an array of strings`);
  return v;
}

/** `rootless`: the defaults differ (pasta instead of a bridge, which needs root). */
export function resolveNetwork(spec: string | NetworkSpec | undefined, rootless: boolean): ResolvedNetwork {
  const n: NetworkSpec = typeof spec === 'string' ? { mode: spec } : (spec ?? {});
  if (typeof n !== 'object') fail('network must be a mode ("bridge", "host", ...) or an object { mode, ports, ... }');
  if (n.ports !== undefined && !Array.isArray(n.ports)) fail('network.ports must be an array');
  const ports = (n.ports ?? []).map(checkPort);
  const mode = n.mode ?? (ports.length ? 'bridge' : 'none');
  if (typeof mode !== 'string' || mode === '') fail('network.mode must be a string');
  let kind: NetworkMode,
    target = '';
  if (mode === 'none' || mode === 'host' || mode === 'pasta' || mode === 'slirp4netns') kind = mode;
  else if (mode.startsWith('container:')) {
    kind = 'container';
    target = mode.slice(10);
    if (!NAME_RE.test(target)) fail(`invalid container in --network ${mode}`);
  } else {
    if (!NAME_RE.test(mode)) fail(`invalid network: ${mode}`);
    kind = 'bridge';
    target = mode === 'bridge' ? 'nsbox' : mode;
  }
  // A bridge and its veth need root on the host: rootless containers get user-mode networking.
  if (kind === 'bridge' && rootless) {
    if (mode !== 'bridge') fail(`network ${mode} needs root (a rootless container can use --network pasta)`);
    kind = 'pasta';
  }
  const implied = kind === 'pasta' && mode !== 'pasta';
  if (ports.length && kind !== 'bridge' && kind !== 'pasta' && kind !== 'slirp4netns')
    fail(`published ports need a network of the container's own (not --network ${mode})`);
  const aliases = strings(n.aliases, 'aliases');
  for (const a of aliases) if (!NAME_RE.test(a)) fail(`invalid network alias: ${a}`);
  const dns = strings(n.dns, 'dns');
  for (const d of dns) if (!IP_RE.test(d)) fail(`invalid --dns address: ${d}`);
  if (n.addHosts !== undefined && !Array.isArray(n.addHosts)) fail('network.addHosts must be an array');
  const addHosts = (n.addHosts ?? []).map((h) => {
    const e = typeof h === 'string' ? { name: h.slice(0, h.indexOf(':')), ip: h.slice(h.indexOf(':') + 1) } : h;
    if (
      !e ||
      typeof e.name !== 'string' ||
      typeof e.ip !== 'string' ||
      !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(e.name) ||
      !IP_RE.test(e.ip)
    ) {
      fail(`invalid --add-host value: ${typeof h === 'string' ? h : JSON.stringify(h)} (expected NAME:IP)`);
    }
    return { name: e.name, ip: e.ip };
  });
  return { mode: kind, target, ports, aliases, dns, addHosts, implied };
}

/** The field names and types of spec.network (src/spec-check.ts); resolveNetwork checks the values. */
export function checkNetworkShape(v: unknown, field = 'network'): void {
  if (v === undefined || typeof v === 'string') return void (v !== undefined && cString(v, field, { max: 256 }));
  if (!isPlainObject(v)) bad(field, `must be a mode ("bridge", "host", ...) or an object, got ${kind(v)}`);
  knownKeys(v, ['mode', 'ports', 'aliases', 'dns', 'addHosts'], field);
  optString(v.mode, `${field}.mode`, { max: 256 });
  list(
    v.ports,
    `${field}.ports`,
    (p, f) => {
      if (!isPlainObject(p)) bad(f, `must be an object { host, container }, got ${kind(p)}`);
      knownKeys(p, ['host', 'container', 'protocol', 'hostIp'], f);
      optString(p.protocol, `${f}.protocol`, { max: 8 });
      optString(p.hostIp, `${f}.hostIp`, { max: 64 });
    },
    4096,
  );
  for (const k of ['aliases', 'dns'] as const) list(v[k], `${field}.${k}`, (x, f) => cString(x, f, { max: 256 }), 256);
  list(
    v.addHosts,
    `${field}.addHosts`,
    (h, f) => {
      if (typeof h === 'string') return void cString(h, f, { max: 512 });
      if (!isPlainObject(h)) bad(f, `must be "NAME:IP" or { name, ip }, got ${kind(h)}`);
      knownKeys(h, ['name', 'ip'], f);
    },
    1024,
  );
}
