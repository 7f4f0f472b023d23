// What a container's network is, on disk, so that anyone can undo it later (its monitor at the
// end, or the next command that finds the monitor dead):
//   STATE/net/ID/record.json   the mode, the conflist used, how many plugins ADDed, the ADD result
//   STATE/net/ID/hosts, resolv.conf, hostname   bound into the container
//   STATE/netns/ID             the namespace bound to a file (bridge networks)
//   STATE/net/.lock            taken while members' /etc/hosts files are rewritten
// Containers on one network find each other by name: each member's /etc/hosts lists the others,
// rewritten in place whenever one joins or leaves (no daemon, no DNS server).
import { closeSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { type Dir, O_READ, openRoot, stateRoot, withLock, writeAtomic } from '../state/dir.js';
import { isAlive } from '../state/proc.js';
import { delNetwork, type CniResult, type ConfList } from './cni.js';
import { hostsText, resolvText, rewrite, type HostEntry } from './files.js';
import type { NetworkMode } from './spec.js';
import type { PortSpec } from './ports.js';
import { removeNetns } from './netns.js';
import { stopHelper } from './pasta.js';
import { traced } from './trace.js';
import { pluginPath } from './firewall.js';
import { subnetsOf } from './config.js';

export interface NetRecord {
  id: string;
  name: string;
  hostname: string;
  mode: NetworkMode;
  /** bridge: the network's name. */
  network?: string;
  /** bridge: the conflist as used for ADD (DEL needs the same). */
  list?: ConfList;
  netns?: string;
  ifname: string;
  /** How many plugins of the list were started for ADD (each is DELeted, in reverse). */
  added: number;
  result?: CniResult;
  address: string | null;
  /** The IPv6 address on a dual-stack network. */
  address6?: string | null;
  ports: PortSpec[];
  aliases: string[];
  addHosts: { name: string; ip: string }[];
  dns: string[];
  /** The process that made it (the container's monitor); dead with the container still recorded: stale. */
  owner: { pid: number; start: number };
  /** pasta or slirp4netns: stopped by pid at the end. */
  helper?: { pid: number; start: number };
}

const ID_RE = /^[0-9a-f]{12}$/;
export const netRoot = (r = stateRoot()): string => `${r}/net`;
export const netDir = (id: string, r = stateRoot()): string => `${netRoot(r)}/${id}`;
export const filesOf = netDir;
export const netnsPath = (id: string, r = stateRoot()): string => `${r}/netns/${id}`;

/**
 * STATE/SUB opened and checked like the rest of the state (src/state/dir.ts: no symlink, ours,
 * writable by nobody else); null when missing and not `create`d. The caller closes it.
 */
function stateSub(sub: 'net' | 'netns', create: boolean, r = stateRoot()): Dir | null {
  const root = openRoot(create, r);
  if (!root) return null;
  try {
    return root.sub(sub, create ? 0o700 : undefined);
  } catch (e) {
    if (!create && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function using<T>(d: Dir | null, fn: (d: Dir) => T): T | null {
  if (!d) return null;
  try {
    return fn(d);
  } finally {
    d.close();
  }
}

/** STATE/net/ID (and STATE/netns), made and checked before anything is written there. */
export function makeNetDirs(id: string, r = stateRoot()): void {
  using(stateSub('net', true, r), (net) => net.sub(id, 0o700).close());
  using(stateSub('netns', true, r), () => {});
}

export function readRecord(id: string, r = stateRoot()): NetRecord | null {
  if (!ID_RE.test(id)) return null;
  try {
    return using(stateSub('net', false, r), (net) =>
      using(net.sub(id), (d) => {
        const fd = d.open('record.json', O_READ);
        try {
          return JSON.parse(readFileSync(fd, 'utf8')) as NetRecord;
        } finally {
          closeSync(fd);
        }
      }),
    );
  } catch {
    return null;
  }
}

export function writeRecord(rec: NetRecord, r = stateRoot()): void {
  using(stateSub('net', true, r), (net) =>
    using(net.sub(rec.id, 0o700), (d) => writeAtomic(d, 'record.json', `${JSON.stringify(rec)}\n`)),
  );
}

export function allRecords(r = stateRoot()): NetRecord[] {
  let ids: string[] = [];
  try {
    ids = using(stateSub('net', false, r), (net) => readdirSync(net.self).filter((e) => ID_RE.test(e))) ?? [];
  } catch {
    /* none yet */
  }
  return ids.map((id) => readRecord(id, r)).filter((x): x is NetRecord => x !== null);
}

const entriesOf = (rec: NetRecord): HostEntry[] =>
  [rec.address, rec.address6]
    .filter((ip): ip is string => !!ip)
    .map((ip) => ({ ip, names: [rec.hostname, rec.name, ...rec.aliases] }));

function hostsFor(rec: NetRecord, members: NetRecord[]): string {
  if (rec.mode === 'host') {
    let host = '';
    try {
      host = readFileSync('/etc/hosts', 'utf8');
    } catch {
      /* none */
    }
    return `${host.replace(/\n?$/, '\n')}${rec.addHosts.map((h) => `${h.ip}\t${h.name}\n`).join('')}`;
  }
  const own = entriesOf(rec);
  const self = own.length ? own : [{ ip: '127.0.1.1', names: [rec.hostname, rec.name] }];
  const peers = members.filter((m) => m.id !== rec.id).flatMap(entriesOf);
  return hostsText(
    self,
    peers,
    rec.addHosts.map((h) => ({ ip: h.ip, names: [h.name] })),
  );
}

/** The container's three files, made now (before the plan binds them). */
export function writeFiles(rec: NetRecord, r = stateRoot()): void {
  const dir = netDir(rec.id, r);
  const members = rec.network ? allRecords(r).filter((m) => m.network === rec.network) : [];
  rewrite(`${dir}/hosts`, hostsFor(rec, members), true);
  rewrite(`${dir}/resolv.conf`, resolvText(rec.dns, rec.mode === 'host'), true);
  rewrite(`${dir}/hostname`, `${rec.hostname}\n`, true);
}

/** Rewrite the /etc/hosts of every member of `network` (after one joined or left). */
export function refreshHosts(network: string | undefined, r = stateRoot()): void {
  if (!network) return;
  using(stateSub('net', true, r), (net) =>
    withLock(net, '.lock', () => {
      const members = allRecords(r).filter((m) => m.network === network && m.address);
      for (const m of members) {
        try {
          rewrite(`${netDir(m.id, r)}/hosts`, hostsFor(m, members));
        } catch {
          /* it left meanwhile */
        }
      }
    }),
  );
}

/**
 * Undo a container's network: DEL through the plugins that ran (in reverse, with the cached
 * result), stop pasta or slirp4netns, unbind the namespace file, remove the files, tell the other members.
 * Safe to run twice and after a crash at any point. Returns the first error, after doing the rest.
 */
export function teardown(id: string, r = stateRoot()): Error | null {
  const rec = readRecord(id, r);
  let err: Error | null = null;
  if (rec?.list && rec.added > 0) {
    try {
      // A namespace never made (a crash before it) is no namespace: the plugins then release the rest.
      const path = netnsPath(id, r); // never a path read from the record
      const netns = rec.netns && existsSync(path) ? path : '';
      delNetwork(
        rec.list,
        {
          containerId: id,
          netns,
          ifname: rec.ifname,
          path: pluginPath(rec.list, subnetsOf(rec.list), r),
          portMappings: rec.ports.map((p) => ({
            hostPort: p.host,
            containerPort: p.container,
            protocol: p.protocol ?? 'tcp',
            ...(p.hostIp ? { hostIP: p.hostIp } : {}),
          })),
        },
        rec.result,
        rec.added,
      );
    } catch (e) {
      err = e as Error;
      process.stderr.write(`nsbox: warning: releasing the network of container ${rec.name}: ${err.message}\n`);
    }
  }
  if (rec?.helper) stopHelper(rec.helper);
  traced('remove namespace file', () => removeNetns(netnsPath(id, r)));
  if (ID_RE.test(id)) using(stateSub('net', false, r), (net) => rmSync(net.at(id), { recursive: true, force: true }));
  if (rec?.network) traced('refresh hosts', () => refreshHosts(rec.network, r));
  return err;
}

/** Records whose maker died without undoing them (a SIGKILLed monitor or library process). */
export function sweepStale(r = stateRoot()): void {
  for (const rec of allRecords(r)) {
    if (!isAlive(rec.owner.pid, rec.owner.start)) teardown(rec.id, r);
  }
}
