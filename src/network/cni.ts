// Running CNI plugins (the CNI 1.0 protocol, as containerd, CRI-O and podman 3 do): each plugin is
// an executable named by the config's `type`, found on CNI_PATH, told what to do by environment
// variables and given its config on stdin; a chain passes each plugin's result to the next as
// prevResult. The ADD result is cached by the caller so DEL can run later with it, in reverse order.
import { createRequire } from 'node:module';
import { accessSync, constants } from 'node:fs';
import { NsboxError } from '../errors.js';
import { traced } from './trace.js';

// node:child_process (and node:net with it) costs ~3 ms to load: only when a network is used.
const require = createRequire(import.meta.url);
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

/** Where Debian, Fedora and the upstream tarball put the plugins. */
export const DEFAULT_CNI_PATH = [
  '/usr/lib/cni',
  '/usr/libexec/cni',
  '/opt/cni/bin',
  '/usr/local/lib/cni',
  '/usr/local/libexec/cni',
];

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIP?: string;
}

/** A network configuration list (a .conflist), as read from disk. */
export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: PluginConf[];
  disableCheck?: boolean;
  /** nsbox's own bridge networks: forwarding and isolation by per-network rules (src/network/firewall.ts). */
  nsboxIsolate?: boolean;
}

export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** What one container's attachment needs on every call. */
export interface Attachment {
  containerId: string;
  /** The network namespace's path (empty for a DEL after it is gone). */
  netns: string;
  ifname: string;
  portMappings?: PortMapping[];
  /** Extra CNI_ARGS, e.g. IgnoreUnknown=1;K8S_POD_NAME=x. */
  args?: string;
  /** PATH for the plugins (default: ours). */
  path?: string;
}

export interface CniResult {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[] };
  [key: string]: unknown;
}

const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The directories searched for plugins: CNI_PATH (colon-separated), else the usual places. */
export function cniPath(): string[] {
  const env = process.env.CNI_PATH;
  return env ? env.split(':').filter((d) => d.startsWith('/')) : DEFAULT_CNI_PATH;
}

const found = new Map<string, string>();

/** The plugin's executable; a type that is not a plain name is refused (a conflist is untrusted). */
export function findPlugin(type: unknown, path = cniPath()): string {
  if (typeof type !== 'string' || !TYPE_RE.test(type)) {
    throw new NsboxError(`invalid CNI plugin type: ${JSON.stringify(type)}`, { step: 'network' });
  }
  const key = `${type}\0${path.join(':')}`;
  const known = found.get(key);
  if (known) return known;
  for (const dir of path) {
    const p = `${dir.replace(/\/+$/, '')}/${type}`;
    try {
      accessSync(p, constants.X_OK);
      found.set(key, p);
      return p;
    } catch {
      /* next */
    }
  }
  throw new NsboxError(
    `CNI plugin "${type}" not found in ${path.join(':')} (install containernetworking-plugins, or set CNI_PATH)`,
    { code: 'ENOENT', step: 'network' },
  );
}

/**
 * The chain as run for one container: a plugin that can do nothing is left out (each exec costs a Go
 * start, and portmap's DEL a dozen iptables runs): `tuning` with no settings, `portmap` without ports.
 * The record keeps this list, so DEL runs the same chain.
 */
export function activeList(list: ConfList, ports: number): ConfList {
  const idle = (p: PluginConf) =>
    (p.type === 'tuning' && Object.keys(p).every((k) => k === 'type')) ||
    (p.type === 'portmap' && ports === 0 && Object.keys(p).every((k) => k === 'type' || k === 'capabilities'));
  const plugins = list.plugins.filter((p) => !idle(p));
  return plugins.length === list.plugins.length || plugins.length === 0 ? list : { ...list, plugins };
}

/** The config one plugin of a list gets on stdin. */
export function pluginConfig(
  list: ConfList,
  plugin: PluginConf,
  a: Attachment,
  prevResult?: CniResult,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  // runtimeConfig only for the capabilities the plugin declares (the spec's rule).
  if (plugin.capabilities?.portMappings && a.portMappings?.length) {
    conf.runtimeConfig = { portMappings: a.portMappings.map((p) => ({ ...p, hostIP: p.hostIP ?? '' })) };
  }
  delete conf.capabilities;
  if (prevResult) conf.prevResult = prevResult;
  return conf;
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** Run one plugin; its error is thrown with the plugin's own `msg` (and `details`). */
export function execPlugin(
  command: CniCommand,
  list: ConfList,
  plugin: PluginConf,
  a: Attachment,
  prevResult?: CniResult,
): CniResult | null {
  const exe = findPlugin(plugin.type);
  const path = cniPath();
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: a.containerId,
    CNI_NETNS: a.netns,
    CNI_IFNAME: a.ifname,
    CNI_PATH: path.join(':'),
    PATH: a.path || process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin',
  };
  if (a.args) env.CNI_ARGS = a.args;
  const input = JSON.stringify(pluginConfig(list, plugin, a, prevResult));
  const r = traced(`${plugin.type} ${command}`, () =>
    childProcess().spawnSync(exe, [], { input, env, encoding: 'utf8', timeout: 60_000, maxBuffer: 4 << 20 }),
  );
  const where = `CNI plugin ${plugin.type} (network ${list.name}, ${command})`;
  if (r.error) throw new NsboxError(`${where}: ${r.error.message}`, { step: 'network' });
  if (r.status !== 0) {
    let msg = r.stderr.trim().split('\n').pop() || `exit status ${r.status ?? r.signal}`;
    try {
      const e = JSON.parse(r.stdout) as { msg?: string; details?: string };
      if (e.msg) msg = e.details ? `${e.msg}: ${e.details}` : e.msg;
    } catch {
      /* not JSON: stderr's last line */
    }
    throw new NsboxError(`${where} failed: ${msg}`, { step: 'network' });
  }
  if (command !== 'ADD' && command !== 'VERSION') return null;
  try {
    return JSON.parse(r.stdout) as CniResult;
  } catch {
    throw new NsboxError(`${where}: its result is not JSON`, { step: 'network' });
  }
}

/** Called after each plugin's ADD with the result so far and how many plugins have run. */
export type Progress = (result: CniResult | undefined, added: number) => void;

/**
 * ADD through the chain. When a plugin fails, the plugins that ran (the failing one too: it may
 * have done half its work) are DELeted in reverse order, and the error names the plugin.
 */
export function addNetwork(list: ConfList, a: Attachment, progress?: Progress): CniResult {
  let result: CniResult | undefined;
  for (let i = 0; i < list.plugins.length; i++) {
    progress?.(result, i + 1); // counted before it runs: a crash now still gets it DELeted
    try {
      result = execPlugin('ADD', list, list.plugins[i], a, result) ?? result;
    } catch (e) {
      try {
        delNetwork(list, a, result, i + 1);
      } catch {
        /* the first error is the one to report */
      }
      throw e;
    }
  }
  progress?.(result, list.plugins.length);
  return result ?? {};
}

/**
 * DEL through the first `count` plugins of the chain in reverse order, with the cached result as
 * prevResult. Each plugin is asked even when an earlier one failed (DEL must release what it can);
 * the first error is thrown at the end. Plugins treat a missing interface or lease as done.
 */
export function delNetwork(
  list: ConfList,
  a: Attachment,
  cached: CniResult | undefined,
  count = list.plugins.length,
): void {
  let first: unknown = null;
  for (let i = Math.min(count, list.plugins.length) - 1; i >= 0; i--) {
    try {
      execPlugin('DEL', list, list.plugins[i], a, cached);
    } catch (e) {
      first ??= e;
    }
  }
  if (first) throw first;
}

/** The first IPv4 (or with `v6`, IPv6) address of a result, without its prefix length, or null. */
export function resultAddress(r: CniResult | undefined, v6 = false): string | null {
  for (const ip of r?.ips ?? []) {
    const addr = ip.address.split('/')[0];
    if (addr.includes(':') === v6) return addr;
  }
  return null;
}
