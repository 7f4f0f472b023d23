// slirp4netns: the older user-mode network for rootless containers, used where pasta is missing.
// It runs in the foreground, so it is started detached and waited for on its ready fd. Published
// ports go through its API socket (add_hostfwd, as podman's slirp4netns port handler does): slirp4netns
// itself listens on the host port and forwards into the container's 10.0.2.100.
import { createRequire } from 'node:module';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import { procStat } from '../state/proc.js';
import { findHelper } from '../userns/rootless.js';
import { stopHelper } from './pasta.js';
import { portText, type PortSpec } from './ports.js';

// node:child_process (and node:net with it) costs ~3 ms to load: only when a network is used.
const require = createRequire(import.meta.url);
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

export const hasSlirp = (): boolean => findHelper('slirp4netns') !== undefined;

const GUEST = '10.0.2.100'; // --configure's address for the container (10.0.2.0/24's .100)

/** Connect the network namespace of `pid` (joining its user namespace) through slirp4netns as tap0. */
export function startSlirp(
  pid: number,
  logFile: string,
  ports: PortSpec[] = [],
  apiSocket = '',
): { pid: number; start: number } {
  const exe = findHelper('slirp4netns');
  if (!exe) {
    throw new NsboxError('--network slirp4netns needs slirp4netns (Debian: apt-get install slirp4netns)', {
      code: 'ENOENT',
      step: 'network',
    });
  }
  const [r, w] = native.pipe();
  const log = openSync(logFile, 'w', 0o600);
  let child: import('node:child_process').ChildProcess;
  try {
    // --disable-host-loopback: the container does not reach the host's 127.0.0.1 through 10.0.2.2.
    const args = ['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=3'];
    if (ports.length) args.push(`--api-socket=${apiSocket}`);
    args.push(String(pid), 'tap0');
    child = childProcess().spawn(exe, args, { detached: true, stdio: ['ignore', log, log, w] });
    child.unref();
  } finally {
    closeSync(w);
    closeSync(log);
  }
  // One byte once the interface is up; EOF if it died first (its write end closes with it).
  const buf = Buffer.alloc(1);
  let n = 0;
  try {
    n = readSync(r, buf, 0, 1, null);
  } finally {
    closeSync(r);
  }
  if (n !== 1 || !child.pid) {
    const why = readFileSync(logFile, 'utf8').trim().split('\n').pop() || 'it ended before the network was up';
    throw new NsboxError(`slirp4netns failed: ${why}`, { step: 'network' });
  }
  const started = { pid: child.pid, start: procStat(child.pid)?.start ?? 0 };
  try {
    for (const p of ports) addHostfwd(apiSocket, p);
  } catch (e) {
    stopHelper(started);
    throw e;
  }
  return started;
}

/** One published port through slirp4netns's API; its error (a port taken meanwhile) is the message. */
function addHostfwd(socket: string, p: PortSpec): void {
  const request = {
    execute: 'add_hostfwd',
    arguments: {
      proto: p.protocol ?? 'tcp',
      host_addr: p.hostIp ?? '0.0.0.0',
      host_port: p.host,
      guest_addr: GUEST,
      guest_port: p.container,
    },
  };
  let reply: { return?: unknown; error?: { desc?: string } };
  try {
    reply = JSON.parse(native.unixRequest(socket, JSON.stringify(request), 10_000));
  } catch (e) {
    throw new NsboxError(`slirp4netns: publishing ${portText(p)}: ${(e as Error).message}`, { step: 'network' });
  }
  if (reply.error || !reply.return) {
    const why = reply.error?.desc ?? 'no answer';
    throw new NsboxError(`slirp4netns: publishing ${portText(p)}: ${why}`, { step: 'network' });
  }
}
