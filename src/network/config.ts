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
 * `subnets`: an IPv4 one, and an IPv6 one for a dual-stack network (host-local gives an address of each).
 */
export function bridgeConfList(name: string, bridge: string, subnets: string | string[]): ConfList {
  const all = typeof subnets === 'string' ? [subnets] : subnets;
  const routes = [
    ...(all.some((x) => !isV6(x)) ? [{ dst: '0.0.0.0/0' }] : []),
    ...(all.some(isV6) ? [{ dst: '::/0' }] : []),
  ];
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
          routes,
          ranges: all.map((subnet) => [{ subnet, gateway: gatewayOf(subnet) }]),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
    nsboxIsolate: true,
  };
}

export const isV6 = (cidr: string): boolean => cidr.includes(':');

/** A subnet as its first address (a number of 32 or 128 bits) and prefix length. */
export interface Subnet {
  v6: boolean;
  base: bigint;
  bits: number;
}

/** a.b.c.d/n (prefix 8 to 30) or an IPv6 CIDR (prefix 16 to 120): the network's first address is its gateway. */
export function parseSubnet(cidr: string): Subnet {
  const slash = cidr.lastIndexOf('/');
  const addr = slash < 0 ? cidr : cidr.slice(0, slash);
  const bits = slash < 0 || !/^\d{1,3}$/.test(cidr.slice(slash + 1)) ? -1 : Number(cidr.slice(slash + 1));
  const v6 = isV6(cidr);
  const ip = v6 ? parseIPv6(addr) : parseIPv4(addr);
  const [lo, hi, width] = v6 ? [16, 120, 128] : [8, 30, 32];
  if (ip === null || bits < lo || bits > hi) {
    const what = v6
      ? `an IPv6 CIDR such as fd89:0:0:1::/64, prefix ${lo} to ${hi}`
      : `an IPv4 CIDR such as 10.89.1.0/24, prefix ${lo} to ${hi}`;
    throw new NsboxError(`invalid subnet: ${cidr} (${what})`, { step: 'subnet' });
  }
  const size = 1n << BigInt(width - bits);
  if (ip % size !== 0n)
    throw new NsboxError(
      `invalid subnet: ${cidr} (host bits set; did you mean ${ipText(ip - (ip % size), v6)}/${bits}?)`,
      { step: 'subnet' },
    );
  return { v6, base: ip, bits };
}

function parseIPv4(a: string): bigint | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (!m || m.slice(1).some((p) => Number(p) > 255)) return null;
  return m.slice(1).reduce((n, p) => n * 256n + BigInt(p), 0n);
}

function parseIPv6(a: string): bigint | null {
  if (!/^[0-9a-fA-F:]+$/.test(a) || a.split('::').length > 2) return null;
  const [head, tail] = a.includes('::') ? a.split('::') : [a, null];
  const words = (x: string) => (x === '' ? [] : x.split(':'));
  const h = words(head),
    t = tail === null ? [] : words(tail);
  const fill = 8 - h.length - t.length;
  if (tail === null ? h.length !== 8 : fill < 1) return null;
  const all = [...h, ...Array(tail === null ? 0 : fill).fill('0'), ...t];
  if (all.some((w) => !/^[0-9a-fA-F]{1,4}$/.test(w))) return null;
  return all.reduce((n, w) => (n << 16n) | BigInt(parseInt(w, 16)), 0n);
}

/** An address as text: dotted for IPv4; IPv6 with its longest run of zero words as ::. */
export function ipText(n: bigint, v6: boolean): string {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
  const w = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1,
    len = 0;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > len && j - i > 1) [best, len] = [i, j - i];
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(w) : `${hex(w.slice(0, best))}::${hex(w.slice(best + len))}`;
}

function gatewayOf(cidr: string): string {
  const s = parseSubnet(cidr);
  return ipText(s.base + 1n, s.v6);
}

function overlaps(a: string, b: string): boolean {
  const x = parseSubnet(a),
    y = parseSubnet(b);
  if (x.v6 !== y.v6) return false;
  const shift = BigInt((x.v6 ? 128 : 32) - Math.min(x.bits, y.bits));
  return x.base >> shift === y.base >> shift;
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

/**
 * `network create`: a bridge on subnets of its own: the given ones, else the first free 10.89.N.0/24;
 * with `ipv6` (or an IPv6 subnet given) dual-stack, the IPv6 one by default fd89:0:0:N::/64.
 */
export function createNetwork(name: string, subnets: string[] = [], ipv6 = false): ConfList {
  checkNetworkName(name);
  if (loadNetwork(name)) throw new NsboxError(`network ${name} already exists`, { step: 'network' });
  const all = listNetworks();
  const used = all.flatMap(subnetsOf);
  for (const want of subnets) {
    parseSubnet(want);
    const clash = all.find((l) => subnetsOf(l).some((s) => overlaps(s, want)));
    if (clash) throw new NsboxError(`subnet ${want} overlaps network ${clash.name}'s`, { step: 'subnet' });
  }
  const given = (v6: boolean) => subnets.filter((x) => isV6(x) === v6);
  if (given(false).length > 1 || given(true).length > 1)
    throw new NsboxError('at most one IPv4 and one IPv6 --subnet', { step: 'subnet' });
  const free = (make: (n: number) => string, what: string): string => {
    for (let n = 1; n < 256; n++) {
      const s = make(n);
      if (![...used, ...subnets].some((u) => overlaps(u, s))) return s;
    }
    throw new NsboxError(`no free subnet in ${what}: give one with --subnet`, { step: 'subnet' });
  };
  const chosen = [given(false)[0] ?? free((n) => `10.89.${n}.0/24`, '10.89.0.0/16')];
  if (ipv6 || given(true).length)
    chosen.push(given(true)[0] ?? free((n) => `fd89:0:0:${n.toString(16)}::/64`, 'fd89::/48'));
  const bridges = new Set(all.map(bridgeOf));
  let bridge = '';
  for (let n = 1; !bridge; n++) {
    const b = `nsbox${n}`;
    if (!bridges.has(b) && !existsSync(`/sys/class/net/${b}`)) bridge = b;
  }
  const list = bridgeConfList(name, bridge, chosen);
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
