// Rootless networking with pasta (Debian's passt): user-mode TCP/UDP between the container's own
// network namespace and the host's sockets, so no root is needed. pasta joins the namespaces of
// the container's PID 1, configures a tap device like the host's interface, and forwards the
// published ports from the host (-t/-u). It backgrounds itself once ready, and quits by itself when
// the namespace goes; it is also stopped by pid on teardown.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { findHelper } from '../userns/rootless.js';
import { isAlive, procStat } from '../state/proc.js';
import type { PortSpec } from './ports.js';

// node:child_process (and node:net with it) costs ~3 ms to load: only when a network is used.
const require = createRequire(import.meta.url);
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

export const hasPasta = (): boolean => findHelper('pasta') !== undefined;

function forwards(ports: PortSpec[], proto: 'tcp' | 'udp'): string {
  const list = ports
    .filter((p) => (p.protocol ?? 'tcp') === proto)
    .map((p) => `${p.hostIp ? `${p.hostIp}/` : ''}${p.host}:${p.container}`);
  return list.length ? list.join(',') : 'none';
}

/** Connect the network namespace of `pid` (and its user namespace) through pasta. */
export function startPasta(pid: number, ports: PortSpec[], pidFile: string): { pid: number; start: number } {
  const pasta = findHelper('pasta');
  if (!pasta)
    throw new NsboxError('--network pasta needs pasta (Debian: apt-get install passt)', {
      code: 'ENOENT',
      step: 'network',
    });
  // No forwarding from the container to the host's own ports (-T/-U), and the gateway is not the host.
  const args = [
    '--config-net',
    '--quiet',
    '--no-map-gw',
    '-t',
    forwards(ports, 'tcp'),
    '-u',
    forwards(ports, 'udp'),
    '-T',
    'none',
    '-U',
    'none',
    '--pid',
    pidFile,
    String(pid),
  ];
  const r = childProcess().spawnSync(pasta, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) {
    const why =
      `${r.stderr}${r.stdout}`
        .split('\n')
        .filter((l) => l && !l.startsWith('Failed to send'))
        .pop() ??
      r.error?.message ??
      `exit status ${r.status}`;
    throw new NsboxError(`pasta failed: ${why}`, { step: 'network' });
  }
  const p = Number(readFileSync(pidFile, 'utf8').trim());
  return { pid: p, start: procStat(p)?.start ?? 0 };
}

/** pasta or slirp4netns, if it is still the process that was started. */
export function stopHelper(p: { pid: number; start: number }): void {
  if (!isAlive(p.pid, p.start)) return;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
}
