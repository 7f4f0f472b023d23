// A container's network, as a StartPart of its start (src/container.ts):
//   bridge / NAME    a namespace bound to a file is made and attached through the network's CNI
//                    plugins in the part's plan step; the child joins it as its first step
//                    (clone without CLONE_NEWNET); after the end, DEL runs and the file goes.
//   host             no network namespace (clone without CLONE_NEWNET).
//   container:NAME   joins that container's namespace.
//   pasta            the container's own namespace, connected by pasta before the command runs
//                    (slirp4netns, outbound only, where pasta is missing and it was not asked for).
// Each of these writes /etc/hosts, /etc/resolv.conf and /etc/hostname in the container's network
// directory (src/network/record.ts) and binds them in through the plan's mounts.
import { closeSync, existsSync, openSync } from 'node:fs';
import type { StartPart } from '../plan/part.js';
import { NsboxError } from '../errors.js';
import { CLONE } from '../native.js';
import * as op from '../plan/ops.js';
import type { ResolvedMount } from '../rootfs/mounts.js';
import type { ResolvedSpec } from '../spec.js';
import { isAlive } from '../state/proc.js';
import { ownerProcess } from '../proc.js';
import { find } from '../state/store.js';
import { activeList, addNetwork, resultAddress, type ConfList } from './cni.js';
import { bridgeOf, isV6, requireNetwork, subnetsOf } from './config.js';
import { ensureForwardRules, pluginPath } from './firewall.js';
import { traced } from './trace.js';
import { bindNetns, createNetns } from './netns.js';
import { checkPortsFree, toCni, type PortSpec } from './ports.js';
import { hasPasta, startPasta } from './pasta.js';
import { hasSlirp, startSlirp } from './slirp.js';
import {
  allRecords,
  filesOf,
  makeNetDirs,
  netDir,
  netnsPath,
  readRecord,
  refreshHosts,
  sweepStale,
  teardown,
  writeFiles,
  writeRecord,
  type NetRecord,
} from './record.js';

export interface NetworkPart extends StartPart {
  /** The container's IPv4 address on its network, once attached (null without one). */
  readonly address: string | null;
  /** Its IPv6 address on a dual-stack network. */
  readonly address6: string | null;
}

const FILES = ['hosts', 'resolv.conf', 'hostname'] as const;

/** The bind mounts of the network files, read-write as Docker's (a user's own volume on one of these targets wins). */
function fileMounts(s: ResolvedSpec, dir: string): void {
  const mine = s.hardening.mounts.map((m) => m.target);
  for (const f of FILES) {
    const target = `/etc/${f}`;
    if (mine.includes(target)) continue;
    const m: ResolvedMount = { type: 'bind', target, source: `${dir}/${f}`, dir: false, readOnly: false };
    s.hardening.mounts.push(m);
  }
}

function fail(msg: string): never {
  throw new NsboxError(msg, { step: 'network' });
}

/**
 * The part for the spec's network, or null for 'none' (only lo, as before). Called before the plan
 * is compiled: it attaches the network now (undone by abort when the start fails later), adds its
 * files to the spec's mounts, and for host and container:NAME turns the new namespace off.
 */
export function networkPart(s: ResolvedSpec): NetworkPart | null {
  return s.network.mode === 'none' ? null : traced('network set-up', () => setUp(s));
}

function setUp(s: ResolvedSpec): NetworkPart | null {
  const n = s.network;
  if (n.mode === 'none') return null;
  if (!s.namespaces.net) fail(`--network ${n.mode} needs the network namespace (namespaces.net is false)`);
  if (n.mode === 'host' && s.identity.userns) {
    fail("--network host cannot be used with a user namespace: its root has no power over the host's network");
  }
  if (n.mode === 'pasta' && process.geteuid?.() === 0) {
    fail('--network pasta is for rootless containers: pasta does not run as root (use bridge or slirp4netns)');
  }
  // In a user namespace whose root is not this user (root's --userns), the container cannot enter the
  // state directory (ours alone): it keeps its own /etc files then.
  const u = s.identity.userns;
  const filesVisible = !u || u.uidMap.find((r) => r.container === 0)?.host === process.geteuid?.();
  // Rootless without pasta: slirp4netns stands in (ports through its API socket).
  let mode = n.mode;
  if (mode === 'pasta' && n.implied && !hasPasta() && hasSlirp()) mode = 'slirp4netns';
  const id = s.id;
  const dir = netDir(id);
  const owner = ownerProcess(); // a detached container's: its monitor
  const rec: NetRecord = {
    id,
    name: s.name,
    hostname: s.hostname,
    mode,
    network: n.mode === 'bridge' ? n.target : undefined,
    ifname: 'eth0',
    added: 0,
    address: null,
    ports: n.ports,
    aliases: n.aliases,
    addHosts: n.addHosts,
    dns: n.dns,
    owner,
  };
  let joinFd = -1;
  let joinWhat = '';
  let done = false;
  const closeJoin = () => {
    if (joinFd >= 0) closeSync(joinFd);
    joinFd = -1;
  };
  const end = () => {
    closeJoin();
    if (done) return;
    done = true;
    traced('teardown', () => teardown(id));
  };

  // container:NAME: its namespace and its /etc files are shared (lo is up there already).
  let peer: NetRecord | null = null;
  try {
    traced('make dirs', () => makeNetDirs(id));
    if (n.mode === 'bridge') {
      traced('sweep stale records', () => sweepStale());
      const list = traced('load network', () => activeList(requireNetwork(n.target), n.ports.length));
      traced('check ports', () =>
        checkPortsFree(
          n.ports,
          allRecords().flatMap((r) => r.ports),
          subnetsOf(list).some(isV6),
        ),
      );
      rec.list = list;
      rec.netns = netnsPath(id);
      traced('write record', () => writeRecord(rec));
      const bridge = bridgeOf(list);
      if (bridge) traced('forward rules', () => ensureForwardRules(list, bridge, subnetsOf(list)));
      // In a user namespace, the container's clone makes its network namespace (owned by that user
      // namespace: one made here could not be joined from it); it is attached while the child waits.
      if (!u) {
        traced('namespace file', () => createNetns(rec.netns as string));
        attach(rec, n.ports);
        joinFd = openSync(rec.netns, 'r');
        joinWhat = 'the network';
      }
    } else if (n.mode === 'container') {
      const found = findContainer(n.target);
      joinFd = openSync(`/proc/${found.pid}/ns/net`, 'r');
      joinWhat = `container ${n.target}'s network`;
      // The pid could have been reused between the look-up and the open.
      if (!isAlive(found.pid, found.pidStart)) fail(`container ${n.target} is not running`);
      peer = readRecord(found.id);
      // Its files, if it has them (not a host network, not a --userns container of root's).
      if (peer && (peer.mode === 'host' || !existsSync(`${filesOf(peer.id)}/hosts`))) peer = null;
    } else if (mode === 'pasta' || mode === 'slirp4netns') {
      checkPortsFree(
        n.ports,
        allRecords().flatMap((r) => r.ports),
      );
    }
    writeRecord(rec);
    if (filesVisible && !peer) traced('write /etc files', () => writeFiles(rec));
    traced('refresh hosts', () => refreshHosts(rec.network));
  } catch (e) {
    end();
    throw e;
  }
  if (filesVisible) fileMounts(s, peer ? filesOf(peer.id) : dir);
  // No namespace of its own: the plan has no lo to bring up, the clone no CLONE_NEWNET.
  if (n.mode === 'host' || n.mode === 'container') s.namespaces.net = false;

  const part: NetworkPart = {
    get address() {
      return rec.address;
    },
    get address6() {
      return rec.address6 ?? null;
    },
    steps(b) {
      if (joinFd < 0) return;
      // Kept through the closing of inherited fds, joined, and closed at once: it is not one of the plan's own.
      b.keepOpen(joinFd);
      b.add('namespaces', op.setns(joinFd, CLONE.NEWNET, joinWhat), op.close([joinFd], `the ${joinWhat} namespace fd`));
    },
    started: closeJoin,
    afterExit: end,
    abort: end,
  };
  if (n.mode === 'bridge' && u) {
    part.beforeRelease = (pid) => {
      traced('namespace file', () => bindNetns(pid, rec.netns as string));
      attach(rec, n.ports);
      writeRecord(rec);
      traced('refresh hosts', () => refreshHosts(rec.network));
    };
  }
  if (mode === 'pasta' || mode === 'slirp4netns') {
    // While the child waits (its user namespace mapped): the helper joins its namespaces.
    part.beforeRelease = (pid) => {
      rec.helper = traced(`start ${mode}`, () =>
        mode === 'pasta'
          ? startPasta(pid, n.ports, `${dir}/pasta.pid`)
          : startSlirp(pid, `${dir}/slirp4netns.log`, n.ports, `${dir}/slirp4netns.sock`),
      );
      writeRecord(rec);
    };
  }
  return part;
}

/** ADD through the record's network into its namespace file; the record follows each step (for DEL). */
function attach(rec: NetRecord, ports: PortSpec[]): void {
  const list = rec.list as ConfList;
  const result = addNetwork(
    list,
    {
      containerId: rec.id,
      netns: rec.netns as string,
      ifname: rec.ifname,
      portMappings: ports.map(toCni),
      path: pluginPath(list, subnetsOf(list)),
    },
    (r, added) => {
      rec.result = r;
      rec.added = added;
      writeRecord(rec);
    },
  );
  rec.result = result;
  rec.address = resultAddress(result);
  rec.address6 = resultAddress(result, true);
}

/** A running container by name or id, through the state directory. */
function findContainer(ref: string): { id: string; pid: number; pidStart: number } {
  const st = find(ref);
  if (st.status !== 'running' || !isAlive(st.pid, st.pidStart)) fail(`container ${ref} is not running`);
  return st;
}
