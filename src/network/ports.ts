// Published ports: `-p [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]`, and whether a host port is free.
import { NsboxError } from '../errors.js';
import { portInUse } from '../native.js';
import type { PortMapping } from './cni.js';

export interface PortSpec {
  host: number;
  container: number;
  protocol?: 'tcp' | 'udp';
  /** The host address to listen on (default: all). */
  hostIp?: string;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function port(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new NsboxError(`invalid ${what} port: ${String(v)} (1 to 65535)`, { step: 'ports' });
  }
  return n;
}

/** `-p` text to a mapping: [IP:]HOST:CONTAINER[/tcp|/udp]. */
export function parsePublish(text: string): PortSpec {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(text);
  if (!m)
    throw new NsboxError(`invalid --publish value: ${text} (expected [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp])`, {
      step: 'ports',
    });
  return checkPort({
    hostIp: m[1],
    host: Number(m[2]),
    container: Number(m[3]),
    protocol: (m[4] as 'tcp' | 'udp') ?? 'tcp',
  });
}

export function checkPort(p: PortSpec): Required<Omit<PortSpec, 'hostIp'>> & { hostIp?: string } {
  if (!p || typeof p !== 'object')
    throw new NsboxError('network.ports: each port must be an object { host, container }', { step: 'ports' });
  const protocol = p.protocol ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp')
    throw new NsboxError(`invalid port protocol: ${String(protocol)} (tcp or udp)`, { step: 'ports' });
  if (p.hostIp !== undefined && (!IPV4_RE.test(p.hostIp) || p.hostIp.split('.').some((x) => Number(x) > 255))) {
    throw new NsboxError(`invalid host IP for a port: ${p.hostIp}`, { step: 'ports' });
  }
  return { host: port(p.host, 'host'), container: port(p.container, 'container'), protocol, hostIp: p.hostIp };
}

export const toCni = (p: PortSpec): PortMapping => ({
  hostPort: p.host,
  containerPort: p.container,
  protocol: p.protocol ?? 'tcp',
  ...(p.hostIp ? { hostIP: p.hostIp } : {}),
});

export const portText = (p: PortSpec): string =>
  `${p.hostIp ?? '0.0.0.0'}:${p.host}->${p.container}/${p.protocol ?? 'tcp'}`;

/** Throws when a host port is held already (by anything, or published by another container). */
export function checkPortsFree(ports: PortSpec[], published: PortSpec[], v6 = false): void {
  for (const p of ports) {
    const proto = p.protocol ?? 'tcp';
    const want = p.hostIp ?? '0.0.0.0';
    const clash = published.find(
      (q) =>
        q.host === p.host &&
        (q.protocol ?? 'tcp') === proto &&
        (want === '0.0.0.0' || (q.hostIp ?? '0.0.0.0') === '0.0.0.0' || q.hostIp === want),
    );
    // Bound and let go at once: the kernel says whether anything holds it (reading /proc/net/tcp would walk
    // every socket of the host, tens of ms on a busy one).
    const udp = proto === 'udp';
    let where: string | null = null;
    if (clash || portInUse(4, udp, want, p.host)) where = want;
    // A dual-stack network's port without a host IP is published on IPv6 too.
    else if (v6 && !p.hostIp && portInUse(6, udp, '::', p.host)) where = '[::]';
    if (where) {
      const by = clash ? ' by another container' : '';
      throw new NsboxError(`host port ${where}:${p.host}/${proto} is already in use${by}`, {
        code: 'EADDRINUSE',
        step: 'ports',
      });
    }
  }
}
