// The forwarding rules of nsbox's bridge networks, per network rather than per container (as
// netavark does): the CNI firewall plugin would add and remove two rules per container address on
// every start and end (~20 iptables runs, ~80 ms here). These are made once per network and boot,
// under the state lock (each start checks one of them is still there), and removed by `network rm`:
//   FORWARD -> NSBOX-FORWARD
//   NSBOX-FORWARD   -i BR ! -o BR -j NSBOX-ISOLATION   (inserted first: isolation before any accept)
//                   -o BR -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
//                   -i BR -j ACCEPT                     (for hosts whose FORWARD policy is DROP)
//   NSBOX-ISOLATION -o BR -j DROP                       (no traffic from one nsbox bridge to another)
// Masquerading and published ports stay with the bridge and portmap plugins.
import { createRequire } from 'node:module';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { openRoot, stateRoot, withLock, writeAtomic } from '../state/dir.js';
import type { ConfList } from './cni.js';

const require = createRequire(import.meta.url);
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

const FORWARD = 'NSBOX-FORWARD';
const ISOLATION = 'NSBOX-ISOLATION';
const COMMENT = ['-m', 'comment', '--comment', 'nsbox network'];

export type Family = 4 | 6;

/** A tool's path: on PATH, else in the sbin directories (a PATH without them is common for root's tools). */
function found(tool: string): string | undefined {
  return [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin']
    .filter((d) => d.startsWith('/'))
    .map((d) => `${d}/${tool}`)
    .find((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

let lastError = '';

function ipt(family: Family, args: string[]): boolean {
  const name = family === 6 ? 'ip6tables' : 'iptables';
  const exe = found(name) ?? name;
  const r = childProcess().spawnSync(exe, ['-w', ...args], { encoding: 'utf8' });
  if (r.error) throw new NsboxError(`${name}: ${r.error.message}`, { step: 'network' });
  lastError = r.stderr.trim().split('\n')[0] ?? '';
  return r.status === 0;
}

/** A rule or chain the network cannot go without: its failure is the start's. */
function must(family: Family, args: string[]): void {
  if (!ipt(family, args)) {
    const name = family === 6 ? 'ip6tables' : 'iptables';
    throw new NsboxError(`${name} ${args.join(' ')} failed: ${lastError || 'no reason given'}`, { step: 'network' });
  }
}

/** The rules of one bridge: where each goes (I: first, A: last) and its words. */
function bridgeRules(bridge: string): [string, 'I' | 'A', string[]][] {
  return [
    [FORWARD, 'I', ['-i', bridge, '!', '-o', bridge, ...COMMENT, '-j', ISOLATION]],
    [ISOLATION, 'A', ['-o', bridge, ...COMMENT, '-j', 'DROP']],
    [
      FORWARD,
      'A',
      ['-o', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED,DNAT', ...COMMENT, '-j', 'ACCEPT'],
    ],
    [FORWARD, 'A', ['-i', bridge, ...COMMENT, '-j', 'ACCEPT']],
  ];
}

function install(family: Family, bridge: string): void {
  for (const chain of [FORWARD, ISOLATION]) {
    if (!ipt(family, ['-S', chain])) must(family, ['-N', chain]);
  }
  const jump = [...COMMENT, '-j', FORWARD];
  if (!ipt(family, ['-C', 'FORWARD', ...jump])) must(family, ['-I', 'FORWARD', '1', ...jump]);
  for (const [chain, where, words] of bridgeRules(bridge)) {
    if (!ipt(family, ['-C', chain, ...words])) must(family, [`-${where}`, chain, ...words]);
  }
}

/** The families a network's subnets use. */
export function familiesOf(subnets: string[]): Family[] {
  const out: Family[] = [];
  if (subnets.some((s) => !s.includes(':'))) out.push(4);
  if (subnets.some((s) => s.includes(':'))) out.push(6);
  return out;
}

const bootId = (): string => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
};

const marker = (bridge: string, family: Family) => `.fw-${bridge}-v${family}`;

/**
 * The rules of a network whose list asks for them (`nsboxIsolate`), made unless this boot's marker
 * says they were and the isolation jump is still there (the marker lives in the state directory,
 * which a reboot empties with the rules).
 */
export function ensureForwardRules(list: ConfList, bridge: string, subnets: string[], r = stateRoot()): void {
  if (!list.nsboxIsolate) return;
  const root = openRoot(true, r); // kept open for the process: not closed here
  if (!root) return;
  const net = root.sub('net', 0o700);
  try {
    withLock(net, '.lock', () => {
      if (v4Only(list, subnets)) makeV4Path(r);
      const boot = bootId();
      for (const family of familiesOf(subnets)) {
        const name = marker(bridge, family);
        let seen = '';
        try {
          seen = readFileSync(net.at(name), 'utf8');
        } catch {
          /* not yet */
        }
        // Made this boot: one check that the isolation jump is still there (a flush by someone else
        // would otherwise go unseen: isolation is a protection, not an optimisation).
        const [chain, , words] = bridgeRules(bridge)[0];
        if (seen === boot && ipt(family, ['-C', chain, ...words])) continue;
        install(family, bridge);
        writeAtomic(net, name, boot);
      }
    });
  } finally {
    net.close();
  }
}

/** `network rm`: the bridge's rules go (the chains stay, as the plugins' do), and the markers. */
export function removeForwardRules(bridge: string, r = stateRoot()): void {
  for (const family of [4, 6] as Family[]) {
    for (const [chain, , words] of bridgeRules(bridge)) {
      while (ipt(family, ['-D', chain, ...words])) {
        /* every copy */
      }
    }
  }
  const root = openRoot(false, r);
  if (!root) return;
  try {
    const net = root.sub('net');
    try {
      for (const family of [4, 6] as Family[]) rmSync(net.at(marker(bridge, family)), { force: true });
    } finally {
      net.close();
    }
  } catch {
    /* no state yet */
  }
}

// An IPv4-only network's plugins get a PATH without ip6tables: portmap's DEL then skips its IPv6 half
// (a dozen ip6tables runs over chains that cannot hold anything of this container's: ~30 ms).
const V4_TOOLS = ['iptables', 'iptables-save', 'iptables-restore'];
const v4Dir = (r: string) => `${r}/net/.v4bin`;
const v4Only = (list: ConfList, subnets: string[]) =>
  !!list.nsboxIsolate && subnets.length > 0 && familiesOf(subnets).every((f) => f === 4);

function makeV4Path(r: string): void {
  const dir = v4Dir(r);
  if (existsSync(`${dir}/iptables`)) return;
  if (!found('iptables')) return;
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // iptables last: its presence says the directory is complete.
  for (const tool of [...V4_TOOLS.slice(1), 'iptables']) {
    const to = found(tool);
    if (!to) continue;
    rmSync(`${dir}/${tool}`, { force: true });
    symlinkSync(to, `${dir}/${tool}`);
  }
}

/** The PATH the network's plugins get: the IPv4-only one where it applies and exists, else ours. */
export function pluginPath(list: ConfList, subnets: string[], r = stateRoot()): string | undefined {
  return v4Only(list, subnets) && existsSync(`${v4Dir(r)}/iptables`) ? v4Dir(r) : undefined;
}
