// The network part of a spec and `-p`, checked without creating anything (no root needed).
import { describe, expect, it } from 'vitest';
import { parsePublish } from '../../src/network/ports.js';
import { resolveNetwork } from '../../src/network/spec.js';
import { activeList, resultAddress, type ConfList } from '../../src/network/cni.js';
import { bridgeConfList, ipText, parseSubnet } from '../../src/network/config.js';
import { hostsText, resolvText } from '../../src/network/files.js';

describe('network spec', () => {
  it('parses -p as docker does', () => {
    expect(parsePublish('8080:80')).toEqual({ host: 8080, container: 80, protocol: 'tcp', hostIp: undefined });
    expect(parsePublish('127.0.0.1:53:5353/udp')).toEqual({
      host: 53,
      container: 5353,
      protocol: 'udp',
      hostIp: '127.0.0.1',
    });
    for (const bad of ['80', '8080:80/sctp', 'a:b', '1.2.3:80:80', '0:80', '8080:70000', '999.1.1.1:1:1']) {
      expect(() => parsePublish(bad), bad).toThrow(/invalid (--publish value|host port|container port|host IP)/);
    }
  });

  it('resolves modes: the default, -p alone, names, container:, rootless', () => {
    expect(resolveNetwork(undefined, false).mode).toBe('none');
    expect(resolveNetwork({ ports: [{ host: 1, container: 2 }] }, false)).toMatchObject({
      mode: 'bridge',
      target: 'nsbox',
    });
    expect(resolveNetwork('bridge', false)).toMatchObject({ mode: 'bridge', target: 'nsbox' });
    expect(resolveNetwork('app', false)).toMatchObject({ mode: 'bridge', target: 'app' });
    expect(resolveNetwork('container:web', false)).toMatchObject({ mode: 'container', target: 'web' });
    expect(resolveNetwork('bridge', true)).toMatchObject({ mode: 'pasta', implied: true });
    expect(resolveNetwork('pasta', true)).toMatchObject({ mode: 'pasta', implied: false });
    expect(() => resolveNetwork('app', true)).toThrow(
      'network app needs root (a rootless container can use --network pasta)',
    );
    expect(() => resolveNetwork({ mode: 'host', ports: [{ host: 1, container: 2 }] }, false)).toThrow(
      /published ports need/,
    );
    expect(() => resolveNetwork('../x', false)).toThrow('invalid network: ../x');
    expect(() => resolveNetwork({ mode: 'bridge', addHosts: ['nocolon'] }, false)).toThrow(
      /invalid --add-host value: nocolon/,
    );
    expect(resolveNetwork({ mode: 'bridge', addHosts: ['db:10.0.0.2'] }, false).addHosts).toEqual([
      { name: 'db', ip: '10.0.0.2' },
    ]);
    expect(() => resolveNetwork({ mode: 'bridge', dns: ['x'] }, false)).toThrow('invalid --dns address: x');
  });

  it('writes hosts and resolv.conf text', () => {
    expect(
      hostsText([{ ip: '10.89.0.2', names: ['web', 'web', 'www'] }], [{ ip: '10.89.0.3', names: ['db'] }], []),
    ).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.89.0.2\tweb www\n10.89.0.3\tdb\n');
    expect(resolvText(['10.0.0.1'])).toMatch(/nameserver 10\.0\.0\.1\n$/);
    expect(resolvText(undefined)).not.toMatch(/nameserver 127\./);
    expect(resultAddress({ ips: [{ address: 'fd00::2/64' }, { address: '10.89.0.9/24' }] })).toBe('10.89.0.9');
    expect(resultAddress({ ips: [{ address: 'fd00::2/64' }, { address: '10.89.0.9/24' }] }, true)).toBe('fd00::2');
  });

  it('parses IPv4 and IPv6 subnets and writes addresses back', () => {
    expect(parseSubnet('10.89.3.0/24')).toEqual({ v6: false, base: 0x0a590300n, bits: 24 });
    expect(parseSubnet('fd89:0:0:a::/64')).toEqual({ v6: true, base: 0xfd8900000000000an << 64n, bits: 64 });
    expect(ipText(parseSubnet('fd89:0:0:a::/64').base + 1n, true)).toBe('fd89:0:0:a::1');
    expect(ipText(0n, true)).toBe('::');
    expect(ipText(1n, true)).toBe('::1');
    expect(ipText(0x20010db8000000000000000000000001n, true)).toBe('2001:db8::1');
    for (const bad of ['fd89::/130', 'fd89:::1/64', 'fd89::g/64', '1:2:3:4:5:6:7:8:9/64', 'fd89::1/64']) {
      expect(() => parseSubnet(bad), bad).toThrow(/invalid subnet/);
    }
  });

  it('leaves out plugins that would do nothing', () => {
    const list = bridgeConfList('n', 'nsbx9', ['10.89.9.0/24', 'fd89:0:0:9::/64']);
    expect(list.plugins[0].ipam).toMatchObject({ routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }] });
    expect(activeList(list, 1).plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
    expect(activeList(list, 0).plugins.map((p) => p.type)).toEqual(['bridge']);
    const mine: ConfList = { ...list, plugins: [...list.plugins, { type: 'tuning' }, { type: 'tuning', mtu: 1400 }] };
    expect(activeList(mine, 1).plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'tuning']);
  });
});
