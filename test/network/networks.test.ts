// `nsbox network create|ls|inspect|rm`: conflists in the network directory, subnets that do not
// overlap, the built-in default, and what is refused (with one line each).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netEnv, type NetEnv } from './util.js';

let e: NetEnv;
beforeAll(() => {
  e = netEnv(206);
});
afterAll(() => e?.destroy());

describe('nsbox network', () => {
  it('create writes a bridge conflist on a free subnet; ls and inspect show it; rm removes it', async () => {
    expect(await e.ok(['network', 'create', '--subnet', '10.89.207.0/24', 'n1'])).toBe('n1\n');
    const list = JSON.parse(readFileSync(`${e.netDir}/n1.conflist`, 'utf8'));
    expect(list.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap']);
    expect(list.nsboxIsolate).toBe(true);
    expect(list.plugins[0].ipam.ranges[0][0]).toEqual({ subnet: '10.89.207.0/24', gateway: '10.89.207.1' });
    // Without --subnet: the first 10.89.N.0/24 no network uses.
    await e.ok(['network', 'create', 'n2']);
    const n2 = JSON.parse(await e.ok(['network', 'inspect', 'n2']))[0];
    expect(n2.plugins[0].ipam.ranges[0][0].subnet).toBe('10.89.1.0/24');
    expect(n2.containers).toEqual([]);
    expect(n2.plugins[0].bridge).not.toBe(list.plugins[0].bridge);
    const ls = await e.ok(['network', 'ls']);
    expect(ls.split('\n')[0]).toMatch(/^NAME\s+DRIVER\s+SUBNET\s+BRIDGE\s+CONTAINERS$/);
    expect(await e.ok(['network', 'ls', '-q'])).toBe('n1\nn2\nnsbox\n');
    expect(await e.ok(['network', 'rm', 'n1', 'n2'])).toBe('n1\nn2\n');
    expect(existsSync(`${e.netDir}/n1.conflist`)).toBe(false);
  });

  it('refuses what it cannot do, in one line', async () => {
    await e.ok(['network', 'create', '--subnet', '10.89.208.0/24', 'n3']);
    const cases: [string[], string][] = [
      [['network', 'create', '--subnet', '10.89.208.128/25', 'n4'], "subnet 10.89.208.128/25 overlaps network n3's"],
      [['network', 'create', 'n3'], 'network n3 already exists'],
      [
        ['network', 'create', '--subnet', '10.89.0.5/24', 'n5'],
        'invalid subnet: 10.89.0.5/24 (host bits set; did you mean 10.89.0.0/24?)',
      ],
      [
        ['network', 'create', '--subnet', 'banana', 'n5'],
        'invalid subnet: banana (an IPv4 CIDR such as 10.89.1.0/24, prefix 8 to 30)',
      ],
      [['network', 'create', '../etc'], 'invalid network name: ../etc (letters, digits, _ . -; at most 64)'],
      [['network', 'rm', 'nope'], 'no such network: nope (see: nsbox network ls)'],
      [['network', 'frob'], 'unknown network command: frob (create, ls, inspect, rm)'],
      [['network'], 'network needs a command: create, ls, inspect or rm (see nsbox network --help)'],
      [['port'], 'port needs a container name or id (and optionally a port)'],
    ];
    for (const [args, msg] of cases) {
      const r = await e.cli(args);
      expect(r.stderr).toBe(`nsbox: ${msg}\n`);
      expect(r.code).toBe(125);
    }
    await e.ok(['network', 'rm', 'n3']);
  });

  it('a conflist dropped in the directory is a network; a broken one is named in the error', async () => {
    writeFileSync(`${e.netDir}/broken.conflist`, '{ nope');
    const r = await e.cli(['network', 'inspect', 'broken']);
    expect(r.stderr).toMatch(/^nsbox: .*broken\.conflist: not valid JSON: /);
    writeFileSync(
      `${e.netDir}/broken.conflist`,
      JSON.stringify({ cniVersion: '1.0.0', name: 'other', plugins: [{ type: 'bridge' }] }),
    );
    expect((await e.cli(['network', 'inspect', 'broken'])).stderr).toMatch(/its "name" is "other", not "broken"/);
    await e.ok(['network', 'rm', 'broken']);
  });
});
