// /etc/hosts, /etc/resolv.conf and /etc/hostname of a container with a network: written in its
// network directory and bound read-write over the container's (never written into a rootfs).
// Rewriting /etc/hosts keeps its inode (truncate and write), so the bind mount sees the change.
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';

/** When the host has only loopback resolvers (systemd-resolved's 127.0.0.53, dnsmasq) and no upstream
 *  list is found: Docker's fallback. */
export const FALLBACK_DNS = ['8.8.8.8', '8.8.4.4'];

export interface HostEntry {
  ip: string;
  names: string[];
}

export function hostsText(self: HostEntry[], peers: HostEntry[], extra: HostEntry[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const e of [...self, ...peers, ...extra]) lines.push(`${e.ip}\t${[...new Set(e.names)].join(' ')}`);
  return `${lines.join('\n')}\n`;
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1';

function readLines(path: string): string[] | null {
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch {
    return null;
  }
}

/** The host's resolv.conf without loopback nameservers (unreachable from another namespace). */
export function resolvText(dns: string[] | undefined, keepLoopback = false): string {
  const host = readLines('/etc/resolv.conf') ?? [];
  const other = host.filter((l) => !/^\s*nameserver\s/.test(l) && l.trim() !== '');
  const servers = (lines: string[]) =>
    lines.map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((s): s is string => !!s);
  let ns = dns?.length ? dns : servers(host).filter((s) => keepLoopback || !isLoopback(s));
  // systemd-resolved keeps the real upstream servers here.
  if (!ns.length) ns = servers(readLines('/run/systemd/resolve/resolv.conf') ?? []).filter((s) => !isLoopback(s));
  if (!ns.length) ns = FALLBACK_DNS;
  return `${[...other, ...ns.map((s) => `nameserver ${s}`)].join('\n')}\n`;
}

/** Replace a file's content in place (O_NOFOLLOW: the path is ours, but never follow a link there). */
export function rewrite(path: string, text: string, create = false): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW | (create ? constants.O_CREAT : 0), 0o644);
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, text, 0);
  } finally {
    closeSync(fd);
  }
}
