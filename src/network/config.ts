// Networks are CNI configuration lists in nsbox's own directory: NSBOX_NETWORK_DIR, else
// /etc/nsbox/net.d for root and $XDG_CONFIG_HOME/nsbox/net.d (~/.config/...) otherwise. Each
// NAME.conflist there is the network NAME (any plugins: bridge, macvlan, ptp, ...). The default
// network `nsbox` (bridge nsbox0, 10.89.0.0/24) is built in unless a nsbox.conflist replaces it.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { NsboxError } from '../errors.js';
import { stateRoot } from '../state/dir.js';
import type { ConfList } from './cni.js';

export const DEFAULT_NETWORK = 'nsbox';
export const DEFAULT_BRIDGE = 'nsbox0';
export const DEFAULT_SUBNET = '10.89.0.0/24';
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

export function networkDir(): string {
  const env = process.env.NSBOX_NETWORK_DIR;
  if (env) {
    if (!env.startsWith('/')) throw new NsboxError(`NSBOX_NETWORK_DIR must be an absolute path: ${env}`);
    return env.replace(/\/+$/, '');
  }
  if (process.getuid?.() === 0) return '/etc/nsbox/net.d';
  return `${process.env.XDG_CONFIG_HOME || `${homedir()}/.config`}/nsbox/net.d`;
}

/** host-local's leases live with the state (a tmpfs for root): gone with a reboot, as the containers are. */
export const ipamDir = (): string => `${stateRoot()}/ipam`;

export function checkNetworkName(name: string): void {
  if (!NAME_RE.test(name))
    throw new NsboxError(`invalid network name: ${name} (letters, digits, _ . -; at most 64)`, { step: 'network' });
}

/**
 * A bridge network as nsbox makes them: NAT out (bridge's ipMasq), hairpin, ports (portmap); the
 * forwarding and the isolation from other nsbox bridges are per-network rules (src/network/firewall.ts)
 * rather than the firewall plugin's per-container ones, and no tuning plugin (it would have nothing to do).
 */
export function bridgeConfList(name: string, bridge: string, subnet: string): ConfList {
  const gateway = gatewayOf(subnet);
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: ipamDir(),
          routes: [{ dst: '0.0.0.0/0' }],
          ranges: [[{ subnet, gateway }]],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
    nsboxIsolate: true,
  };
}

/** a.b.c.d/n: the network's first address is its gateway. */
export function parseSubnet(cidr: string): { base: number; bits: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const parts = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : -1;
  if (!m || parts.some((p) => p > 255) || bits < 8 || bits > 30) {
    throw new NsboxError(`invalid subnet: ${cidr} (an IPv4 CIDR such as 10.89.1.0/24, prefix 8 to 30)`, {
      step: 'subnet',
    });
  }
  const ip = parts.reduce((a, p) => a * 256 + p, 0);
  const size = 2 ** (32 - bits);
  if (ip % size !== 0)
    throw new NsboxError(
      `invalid subnet: ${cidr} (host bits set; did you mean ${ipString(ip - (ip % size))}/${bits}?)`,
      { step: 'subnet' },
    );
  return { base: ip, bits };
}

export const ipString = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

function gatewayOf(cidr: string): string {
  return ipString(parseSubnet(cidr).base + 1);
}

function overlaps(a: string, b: string): boolean {
  const x = parseSubnet(a),
    y = parseSubnet(b);
  const bits = Math.min(x.bits, y.bits),
    size = 2 ** (32 - bits);
  return Math.floor(x.base / size) === Math.floor(y.base / size);
}

/** The network's conflist, or null. A file that is not a valid list is an error naming it. */
export function loadNetwork(name: string): ConfList | null {
  checkNetworkName(name);
  const file = `${networkDir()}/${name}.conflist`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return name === DEFAULT_NETWORK ? bridgeConfList(DEFAULT_NETWORK, DEFAULT_BRIDGE, DEFAULT_SUBNET) : null;
  }
  let list: ConfList;
  try {
    list = JSON.parse(text) as ConfList;
  } catch (e) {
    throw new NsboxError(`${file}: not valid JSON: ${(e as Error).message}`, { step: 'network' });
  }
  if (
    !list ||
    typeof list !== 'object' ||
    !Array.isArray(list.plugins) ||
    list.plugins.length === 0 ||
    list.plugins.some((p) => !p || typeof p !== 'object' || typeof p.type !== 'string')
  ) {
    throw new NsboxError(`${file}: not a CNI network configuration list (needs "plugins": [{ "type": ... }])`, {
      step: 'network',
    });
  }
  if (list.name !== name)
    throw new NsboxError(`${file}: its "name" is ${JSON.stringify(list.name)}, not "${name}"`, { step: 'network' });
  list.cniVersion ??= '1.0.0';
  return list;
}

export function requireNetwork(name: string): ConfList {
  const list = loadNetwork(name);
  if (!list) throw new NsboxError(`no such network: ${name} (see: nsbox network ls)`, { step: 'network' });
  return list;
}

/** Every network: the files in the directory, and the default one. */
export function listNetworks(): ConfList[] {
  let names: string[] = [];
  try {
    names = readdirSync(networkDir())
      .filter((f) => f.endsWith('.conflist'))
      .map((f) => f.slice(0, -9))
      .filter((n) => NAME_RE.test(n));
  } catch {
    /* no directory yet */
  }
  if (!names.includes(DEFAULT_NETWORK)) names.push(DEFAULT_NETWORK);
  const out: ConfList[] = [];
  for (const n of names.sort()) {
    try {
      out.push(loadNetwork(n)!);
    } catch {
      /* a broken file is reported when used */
    }
  }
  return out;
}

const bridgeOf = (l: ConfList) => l.plugins.find((p) => p.type === 'bridge')?.bridge as string | undefined;
const subnetsOf = (l: ConfList): string[] => {
  const ipam = l.plugins.find((p) => p.ipam)?.ipam as { subnet?: string; ranges?: { subnet: string }[][] } | undefined;
  return [...(ipam?.subnet ? [ipam.subnet] : []), ...(ipam?.ranges ?? []).flat().map((r) => r.subnet)].filter((s) => {
    try {
      parseSubnet(s);
      return true;
    } catch {
      return false;
    }
  });
};
export { bridgeOf, subnetsOf };

/** `network create`: a bridge on a subnet of its own (the first free 10.89.N.0/24 unless given). */
export function createNetwork(name: string, subnet?: string): ConfList {
  checkNetworkName(name);
  if (loadNetwork(name)) throw new NsboxError(`network ${name} already exists`, { step: 'network' });
  const all = listNetworks();
  const used = all.flatMap(subnetsOf);
  if (subnet !== undefined) {
    parseSubnet(subnet);
    const want = subnet;
    const clash = all.find((l) => subnetsOf(l).some((s) => overlaps(s, want)));
    if (clash) throw new NsboxError(`subnet ${subnet} overlaps network ${clash.name}'s`, { step: 'subnet' });
  } else {
    for (let n = 1; n < 256 && subnet === undefined; n++) {
      const s = `10.89.${n}.0/24`;
      if (!used.some((u) => overlaps(u, s))) subnet = s;
    }
    if (subnet === undefined)
      throw new NsboxError('no free subnet in 10.89.0.0/16: give one with --subnet', { step: 'subnet' });
  }
  const bridges = new Set(all.map(bridgeOf));
  let bridge = '';
  for (let n = 1; !bridge; n++) {
    const b = `nsbox${n}`;
    if (!bridges.has(b) && !existsSync(`/sys/class/net/${b}`)) bridge = b;
  }
  const list = bridgeConfList(name, bridge, subnet as string);
  mkdirSync(networkDir(), { recursive: true, mode: 0o755 });
  writeFileSync(`${networkDir()}/${name}.conflist`, `${JSON.stringify(list, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
  return list;
}

export function removeNetworkFile(name: string): boolean {
  const file = `${networkDir()}/${name}.conflist`;
  if (!existsSync(file)) return false;
  rmSync(file);
  return true;
}
