// The library: spawn({ network }) attaches before the command runs, the address is on the sandbox,
// a published port answers, and the end of the sandbox releases everything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from '../../src/index.js';
import { iptablesRules, netEnv, netState, restoreCniRules, ROOTFS, type NetEnv } from './util.js';

let e: NetEnv;
let rulesBefore: string[];
const saved = { state: process.env.NSBOX_STATE_DIR, net: process.env.NSBOX_NETWORK_DIR };
beforeAll(() => {
  rulesBefore = iptablesRules();
  e = netEnv(205);
  process.env.NSBOX_STATE_DIR = e.state;
  process.env.NSBOX_NETWORK_DIR = e.netDir;
});
afterAll(() => {
  process.env.NSBOX_STATE_DIR = saved.state;
  process.env.NSBOX_NETWORK_DIR = saved.net;
  e?.destroy();
  restoreCniRules(rulesBefore);
});

describe('spawn({ network })', () => {
  it('gives the sandbox an address and publishes ports; the end releases them', async () => {
    // Warm-up: the plugins' chains and the bridge stay; count after them.
    await spawn({ rootfs: ROOTFS, command: ['true'], network: { ports: [{ host: 28381, container: 80 }] } }).exited;
    const before = netState(e);
    const sb = spawn({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'echo hi from the sandbox | nc -l -p 80'],
      network: { mode: 'bridge', ports: [{ host: 28380, container: 80 }] },
    });
    expect(sb.address).toMatch(/^10\.89\.205\.\d+$/);
    let got = '';
    for (let i = 0; i < 50 && !got; i++) {
      got = await new Promise<string>((resolve) => {
        // node:net from the host to the published port on loopback.
        import('node:net').then(({ connect }) => {
          const c = connect(28380, '127.0.0.1');
          let text = '';
          c.on('data', (d) => (text += d));
          c.on('close', () => resolve(text));
          c.on('error', () => resolve(''));
        });
      });
      if (!got) await new Promise((r) => setTimeout(r, 100));
    }
    expect(got).toBe('hi from the sandbox\n');
    const r = await sb.exited;
    expect(r.status).toBe('ok');
    expect(netState(e)).toEqual(before);
  });

  it('a bad network spec throws before anything is made', () => {
    expect(() =>
      spawn({ rootfs: ROOTFS, command: ['true'], network: { mode: 'none', ports: [{ host: 1, container: 1 }] } }),
    ).toThrow(/published ports need a network of the container's own/);
    expect(() =>
      spawn({ rootfs: ROOTFS, command: ['true'], network: { ports: [{ host: 0, container: 80 }] } }),
    ).toThrow(/invalid host port: 0/);
    expect(() => spawn({ rootfs: ROOTFS, command: ['true'], network: { mode: 'bridge', prots: [] } as never })).toThrow(
      'unknown field network.prots (did you mean ports?)',
    );
    expect(() => spawn({ rootfs: ROOTFS, command: ['true'], network: 42 as never })).toThrow(/network: must be a mode/);
    expect(() => spawn({ rootfs: ROOTFS, command: ['true'], network: 'container:nope' })).toThrow(
      /no such container: nope/,
    );
  });
});
