// What the network tests share: a network directory and state of their own (NSBOX_NETWORK_DIR,
// NSBOX_STATE_DIR), a default network on a bridge and subnet of the test file's own (never podman's
// cni-podman0/10.88.0.0/16, never nsbox0), a count of what the host has that a network could leak
// (links, iptables rules, host-local leases, netns files), and removing the bridges at the end.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { removeForwardRules } from '../../src/network/firewall.js';
import { CLI, collect, foreignPidnsProcesses, hostMounts, type CliResult } from '../helpers.js';
export { ROOTFS } from '../helpers.js';

export interface NetEnv {
  dir: string;
  netDir: string;
  state: string;
  ipam: string;
  bridge: string;
  subnet: string;
  env: NodeJS.ProcessEnv;
  /** `nsbox ARGS` in this environment. */
  cli(args: string[], opts?: { input?: string; onStart?: (pid: number) => void }): Promise<CliResult>;
  /** Like cli, but must succeed: its stdout. */
  ok(args: string[]): Promise<string>;
  /** Remove what the networks made that outlives containers (bridges, their isolation rules) and the dirs. */
  destroy(): void;
}

/** `n` picks the test file's subnet 10.89.n.0/24 and bridge nsbt<n> (n from 200 up: clear of `network create`'s). */
export function netEnv(n: number): NetEnv {
  const dir = mkdtempSync(`/tmp/nsbox-nettest-${n}-`);
  chmodSync(dir, 0o755);
  const netDir = `${dir}/net.d`,
    state = `${dir}/state`,
    ipam = `${dir}/ipam`;
  mkdirSync(netDir);
  mkdirSync(state, { mode: 0o755 });
  // The bridge plugin (isGateway) turns forwarding on, as podman does: put it back at the end.
  const forwarding = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  const forwarding6 = readFileSync('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8');
  const bridge = `nsbt${n}`,
    subnet = `10.89.${n}.0/24`;
  writeFileSync(`${netDir}/nsbox.conflist`, JSON.stringify(bridgeList('nsbox', bridge, subnet, ipam)));
  const env = { ...process.env, NSBOX_STATE_DIR: state, NSBOX_NETWORK_DIR: netDir };
  const cli = (args: string[], opts: { input?: string; onStart?: (pid: number) => void } = {}) =>
    collect(process.execPath, [CLI, ...args], { ...opts, env });
  return {
    dir,
    netDir,
    state,
    ipam,
    bridge,
    subnet,
    env,
    cli,
    async ok(args) {
      const r = await cli(args);
      if (r.code !== 0) throw new Error(`nsbox ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    destroy() {
      for (const f of readdirSync(netDir)) {
        const m = /"bridge":\s*"([^"]+)"/.exec(readFileSync(`${netDir}/${f}`, 'utf8'));
        if (m) removeBridge(m[1], state);
      }
      rmSync(dir, { recursive: true, force: true });
      writeFileSync('/proc/sys/net/ipv4/ip_forward', forwarding);
      writeFileSync('/proc/sys/net/ipv6/conf/all/forwarding', forwarding6);
    },
  };
}

export function bridgeList(name: string, bridge: string, subnet: string, ipam: string) {
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
        ipam: { type: 'host-local', dataDir: ipam, routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet }]] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
    nsboxIsolate: true,
  };
}

const ISOLATION = 'CNI firewall plugin rules (ingressPolicy: same-bridge)';

/** The bridge and its forwarding and isolation rules (what `nsbox network rm` removes too). */
export function removeBridge(bridge: string, state?: string): void {
  if (existsSync(`/sys/class/net/${bridge}`)) execFileSync('ip', ['link', 'del', bridge]);
  removeForwardRules(bridge, state);
  const del = (args: string[]) => {
    try {
      execFileSync(
        'iptables',
        ['-w', '-D', ...args.slice(0, -2), '-m', 'comment', '--comment', ISOLATION, ...args.slice(-2)],
        { stdio: 'ignore' },
      );
    } catch {
      /* not there */
    }
  };
  del(['CNI-ISOLATION-STAGE-1', '-i', bridge, '!', '-o', bridge, '-j', 'CNI-ISOLATION-STAGE-2']);
  del(['CNI-ISOLATION-STAGE-2', '-o', bridge, '-j', 'DROP']);
}

/** Every iptables and ip6tables rule of the filter and nat tables, one string each (chains included);
 *  an IPv6 one starts with "6:" ("6:nat -A ..."). */
export function iptablesRules(): string[] {
  const out: string[] = [];
  for (const [save, pre] of [
    ['iptables-save', ''],
    ['ip6tables-save', '6:'],
  ]) {
    for (const t of ['filter', 'nat']) {
      for (const l of String(execFileSync(save, ['-t', t])).split('\n')) {
        if (l.startsWith('-A') || l.startsWith(':')) out.push(`${pre}${t} ${l.replace(/\[\d+:\d+\]/, '')}`);
      }
    }
  }
  return out.sort();
}

export function hostLinks(): string[] {
  return readdirSync('/sys/class/net').sort();
}

/** host-local's leases: files named by address in each network's directory. */
export function leases(ipam: string): string[] {
  const out: string[] = [];
  if (!existsSync(ipam)) return out;
  for (const net of readdirSync(ipam)) {
    for (const f of readdirSync(`${ipam}/${net}`)) {
      if (/^\d+\.\d+\.\d+\.\d+$/.test(f) || /^[0-9a-f:]+:[0-9a-f:]*$/.test(f)) out.push(`${net}/${f}`);
    }
  }
  return out;
}

export function netState(e: NetEnv) {
  const ls = (d: string) => (existsSync(d) ? readdirSync(d).filter((f) => !f.startsWith('.')) : []);
  return {
    links: hostLinks(),
    rules: iptablesRules(),
    leases: leases(e.ipam),
    netns: ls(`${e.state}/netns`),
    records: ls(`${e.state}/net`),
  };
}

/** A shell command's output. */
export function sh(cmd: string): string {
  return String(execFileSync('sh', ['-c', cmd]));
}

/**
 * The CNI plugins make chains once and keep them (CNI-FORWARD, CNI-HOSTPORT-DNAT, ...): remove
 * those rules and chains that were not there before the test file ran.
 */
export function restoreCniRules(before: string[]): void {
  const had = new Set(before);
  const ipt = (table: string, args: string[]) => {
    const [exe, t] = table.startsWith('6:') ? ['ip6tables', table.slice(2)] : ['iptables', table];
    try {
      execFileSync(exe, ['-w', '-t', t, ...args], { stdio: 'ignore' });
    } catch {
      /* gone meanwhile */
    }
  };
  const now = iptablesRules().filter((r) => !had.has(r));
  // nsbox's per-network rules belong to their network (removed with it, by destroy()): another test
  // file may still use the chains; they go here only once empty.
  for (const r of now) {
    const [table, ...rest] = r.split(' ');
    if (rest[0] !== '-A' || r.includes('NSBOX-')) continue;
    // iptables-save quotes comments; give the words back to iptables as one argument.
    const words = rest
      .join(' ')
      .match(/"[^"]*"|\S+/g)!
      .map((w) => w.replace(/^"|"$/g, ''));
    ipt(table, ['-D', ...words.slice(1)]);
  }
  const chains = now
    .map((r) => r.split(' '))
    .filter(([, c]) => c.startsWith(':CNI-'))
    .map(([t, c]) => [t, c.slice(1)]);
  for (const [t, c] of chains) ipt(t, ['-F', c]);
  for (const [t, c] of chains) ipt(t, ['-X', c]);
  const rest = iptablesRules();
  for (const t of ['filter', '6:filter']) {
    if (rest.some((r) => r.startsWith(`${t} -A NSBOX-`)) || !rest.includes(`${t} :NSBOX-FORWARD - `)) continue;
    ipt(t, ['-D', 'FORWARD', '-m', 'comment', '--comment', 'nsbox network', '-j', 'NSBOX-FORWARD']);
    ipt(t, ['-X', 'NSBOX-FORWARD']);
    ipt(t, ['-X', 'NSBOX-ISOLATION']);
  }
}

/**
 * What these tests could leave: processes in another PID namespace whose root is the test rootfs (a
 * container of ours: others' tests use their own rootfs copies, so a busy shared machine does not
 * count), and mounts under the test's directory or the rootfs. Compare before and after.
 */
export function ours(dir: string, rootfs: string) {
  const root = statSync(rootfs);
  const procs = [...foreignPidnsProcesses()].filter((p) => {
    try {
      const st = statSync(`/proc/${p}/root`);
      return st.ino === root.ino && st.dev === root.dev;
    } catch {
      return false;
    }
  });
  const mounts = hostMounts().filter((m) => m.startsWith(`${dir}/`) || m.startsWith(`${rootfs}/`) || m === rootfs);
  return { procs: procs.sort(), mounts: mounts.sort() };
}

/** Waits (up to 5 s: processes killed a moment ago may still be going) until `ours` is back to `before`. */
export async function expectOursLeft(dir: string, rootfs: string, before: ReturnType<typeof ours>): Promise<void> {
  let now = ours(dir, rootfs);
  for (let i = 0; i < 50 && JSON.stringify(now) !== JSON.stringify(before); i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = ours(dir, rootfs);
  }
  if (JSON.stringify(now) !== JSON.stringify(before)) {
    throw new Error(`left behind: ${JSON.stringify(now)} (before: ${JSON.stringify(before)})`);
  }
}
