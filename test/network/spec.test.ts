// The network part of a spec and `-p`, checked without creating anything (no root needed).
import { describe, expect, it } from 'vitest';
import { parsePublish } from '../../src/network/ports.js';
import { resolveNetwork } from '../../src/network/spec.js';
import { resultAddress } from '../../src/network/cni.js';
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
  });
});
