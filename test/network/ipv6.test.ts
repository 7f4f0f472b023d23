// Dual-stack networks: `network create --ipv6` gives a bridge network an IPv6 subnet beside its IPv4
// one; a container on it gets an address, a route and an /etc/hosts line of each family, and two
// containers ping each other over IPv6 by name (inside the test's own bridge: the bridge plugin turns
// DAD off in the container, hairpin being on). The default network stays IPv4-only.
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectOursLeft, iptablesRules, netEnv, netState, ours, restoreCniRules, ROOTFS, type NetEnv } from './util.js';

let e: NetEnv;
let rulesBefore: string[];
const V4 = '10.89.214.0/24';
const V6 = 'fd89:204::/64';

beforeAll(async () => {
  rulesBefore = iptablesRules();
  e = netEnv(204);
  await e.ok(['network', 'create', '--ipv6', '--subnet', V6, '--subnet', V4, 'dual']);
  // The plugins make their chains (and the bridge) on first use and keep them: make them before counting.
  await e.ok(['run', '--network', 'dual', '-p', '28480:80', ROOTFS, 'true']);
  await e.ok(['run', '--network', 'bridge', ROOTFS, 'true']);
});
afterAll(() => {
  e?.destroy();
  restoreCniRules(rulesBefore);
});

let before: ReturnType<typeof netState>;
let host: ReturnType<typeof ours>;
beforeEach(() => {
  before = netState(e);
  host = ours(e.dir, ROOTFS);
});
afterEach(async () => {
  await expectOursLeft(e.dir, ROOTFS, host);
  expect(netState(e)).toEqual(before);
});

describe('IPv6', () => {
  it('network create --ipv6 writes both ranges and both default routes', () => {
    const list = JSON.parse(readFileSync(`${e.netDir}/dual.conflist`, 'utf8'));
    const ipam = list.plugins[0].ipam;
    expect(ipam.ranges).toEqual([[{ subnet: V4, gateway: '10.89.214.1' }], [{ subnet: V6, gateway: 'fd89:204::1' }]]);
    expect(ipam.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
  });

  it('a container gets both addresses, routes and hosts lines; two ping each other over IPv6 by name', async () => {
    await e.ok(['run', '-d', '--name', 'six', '--network', 'dual', ROOTFS, 'sleep', '60']);
    try {
      const net = JSON.parse(await e.ok(['inspect', 'six']))[0].network;
      expect(net.address).toMatch(/^10\.89\.214\.\d+$/);
      expect(net.address6).toMatch(/^fd89:204::[0-9a-f]+$/);
      const script = [
        'ip -o addr show eth0 scope global',
        'ip -6 route show default',
        'cat /etc/hosts',
        'ping6 -c 1 -W 3 six >/dev/null && echo ping6 ok',
      ].join('; ');
      const out = await e.ok(['run', '--name', 'peer', '--network', 'dual', ROOTFS, 'sh', '-c', script]);
      expect(out).toMatch(/eth0\s+inet 10\.89\.214\.\d+\/24/);
      expect(out).toMatch(/eth0\s+inet6 fd89:204::[0-9a-f]+\/64/);
      expect(out).toMatch(/^default via fd89:204::1 dev eth0/m);
      expect(out).toContain(`${net.address}\tsix\n${net.address6}\tsix\n`);
      expect(out).toMatch(/^fd89:204::[0-9a-f]+\tpeer$/m);
      expect(out).toMatch(/ping6 ok\n$/);
    } finally {
      await e.ok(['rm', '-f', 'six']);
    }
  });

  it('the default network stays IPv4-only', async () => {
    const out = await e.ok([
      'run',
      '--network',
      'bridge',
      ROOTFS,
      'ip',
      '-o',
      'addr',
      'show',
      'eth0',
      'scope',
      'global',
    ]);
    expect(out).toMatch(/inet 10\.89\.204\.\d+\/24/);
    expect(out).not.toContain('inet6');
  });

  it('-p on a dual-stack network: a port something holds on IPv6 only is refused too', async () => {
    const server = (await import('node:net')).createServer();
    await new Promise<void>((r) => server.listen({ port: 28481, host: '::', ipv6Only: true }, r));
    try {
      const r = await e.cli(['run', '--network', 'dual', '-p', '28481:80', ROOTFS, 'true']);
      expect(r.stderr).toBe('nsbox: host port [::]:28481/tcp is already in use\n');
      expect(r.code).toBe(125);
      // The IPv4-only default network does not publish on IPv6: the same port is free there.
      await e.ok(['run', '--network', 'bridge', '-p', '28481:80', ROOTFS, 'true']);
    } finally {
      server.close();
    }
  });

  it('refuses a bad IPv6 subnet in one line', async () => {
    const cases: [string[], string][] = [
      [['--subnet', 'fd89:204::1/64'], 'invalid subnet: fd89:204::1/64 (host bits set; did you mean fd89:204::/64?)'],
      [['--subnet', 'fd89::/8'], 'invalid subnet: fd89::/8 (an IPv6 CIDR such as fd89:0:0:1::/64, prefix 16 to 120)'],
      [['--subnet', 'fd89:204:0:0:0::/80'], "subnet fd89:204:0:0:0::/80 overlaps network dual's"],
      [['--subnet', 'fd89:1::/64', '--subnet', 'fd89:2::/64'], 'at most one IPv4 and one IPv6 --subnet'],
    ];
    for (const [args, msg] of cases) {
      const r = await e.cli(['network', 'create', ...args, 'bad6']);
      expect(r.stderr).toBe(`nsbox: ${msg}\n`);
      expect(r.code).toBe(125);
    }
  });
});
