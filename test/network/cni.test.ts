// The CNI runner against Debian's real plugins: ADD through a chain into a namespace bound to a
// file, the result and prevResult, DEL in reverse with the cached result (twice: idempotent),
// plugin errors as their msg, and a chain failing half-way undone.
import { existsSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addNetwork,
  delNetwork,
  execPlugin,
  findPlugin,
  resultAddress,
  type CniResult,
  type ConfList,
} from '../../src/network/cni.js';
import { createNetns, removeNetns } from '../../src/network/netns.js';
import { hostMounts } from '../helpers.js';
import { bridgeList, hostLinks, iptablesRules, leases, netEnv, restoreCniRules, sh, type NetEnv } from './util.js';

let e: NetEnv;
let rulesBefore: string[];
beforeAll(() => {
  e = netEnv(201);
  mkdirSync(`${e.state}/netns`, { mode: 0o700 });
  rulesBefore = iptablesRules();
});
afterAll(() => {
  e?.destroy();
  restoreCniRules(rulesBefore);
});

const list = (): ConfList => bridgeList('cnitest', e.bridge, e.subnet, e.ipam) as ConfList;

describe('CNI plugins', () => {
  it('finds plugins on CNI_PATH and refuses a type that is a path', () => {
    expect(findPlugin('bridge')).toMatch(/\/bridge$/);
    expect(() => findPlugin('../../bin/sh')).toThrow(/invalid CNI plugin type/);
    expect(() => findPlugin('no-such-plugin')).toThrow(/CNI plugin "no-such-plugin" not found/);
  });

  it('ADD runs the chain in a file-bound namespace; DEL undoes it, twice without error', () => {
    const ns = `${e.state}/netns/aaaaaaaaaaaa`;
    // Only this file's mounts: others on a shared machine come and go meanwhile.
    const mine = () => hostMounts().filter((m) => m.startsWith(`${e.dir}/`)).length;
    const mounts = mine();
    createNetns(ns);
    expect(mine()).toBe(mounts + 1);
    const a = {
      containerId: 'aaaaaaaaaaaa',
      netns: ns,
      ifname: 'eth0',
      portMappings: [{ hostPort: 28080, containerPort: 80, protocol: 'tcp' as const }],
    };
    const seen: number[] = [];
    const r = addNetwork(list(), a, (_r, n) => seen.push(n));
    expect(seen.at(-1)).toBe(2);
    const ip = resultAddress(r)!;
    expect(ip.startsWith('10.89.201.')).toBe(true);
    // The interface is in the namespace, with the address; the host has the veth and a lease.
    expect(sh(`nsenter --net=${ns} ip -4 -o addr show eth0`)).toContain(`${ip}/24`);
    expect(leases(e.ipam)).toEqual([`cnitest/${ip}`]);
    expect(iptablesRules().join('\n')).toContain('28080');
    const links = hostLinks().filter((l) => l.startsWith('veth'));
    delNetwork(list(), a, r);
    delNetwork(list(), a, r);
    expect(leases(e.ipam)).toEqual([]);
    expect(iptablesRules().join('\n')).not.toContain('28080');
    expect(hostLinks().filter((l) => l.startsWith('veth')).length).toBe(links.length - 1);
    removeNetns(ns);
    expect(existsSync(ns)).toBe(false);
    expect(mine()).toBe(mounts);
  });

  it("a plugin's error is its msg; a chain failing half-way DELs what ran and names the plugin", () => {
    const ns = `${e.state}/netns/bbbbbbbbbbbb`;
    createNetns(ns);
    try {
      const a = { containerId: 'bbbbbbbbbbbb', netns: ns, ifname: 'eth0' };
      const bad = list();
      bad.plugins[2] = { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.no_such_knob': '1' } };
      const links = hostLinks();
      expect(() => addNetwork(bad, a)).toThrow(/CNI plugin tuning \(network cnitest, ADD\) failed: .*no_such_knob/);
      expect(leases(e.ipam)).toEqual([]);
      expect(hostLinks()).toEqual(links);
      expect(sh(`nsenter --net=${ns} ip -o link`)).not.toContain('eth0');
      // A plugin's JSON error comes back as its msg: host-local with no range.
      const r: CniResult | null = null;
      expect(() =>
        execPlugin(
          'ADD',
          { cniVersion: '1.0.0', name: 'x', plugins: [] },
          { type: 'bridge', bridge: e.bridge, ipam: { type: 'host-local', dataDir: e.ipam } },
          a,
          r ?? undefined,
        ),
      ).toThrow(/CNI plugin bridge \(network x, ADD\) failed: .*(range|subnet)/i);
    } finally {
      removeNetns(ns);
    }
  });
});
