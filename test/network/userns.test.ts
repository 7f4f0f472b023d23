// A bridge network for root's --userns containers: the network namespace is made by the container's
// clone (owned by its user namespace), bound to a file while the child waits, and attached there by
// the plugins running as host root. Two such containers reach each other; -p answers from the host;
// everything goes at the end, as for any other container.
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectOursLeft, iptablesRules, netEnv, netState, ours, restoreCniRules, ROOTFS, type NetEnv } from './util.js';

let e: NetEnv;
let rulesBefore: string[];
let www: string;
const PORT = 28380;

beforeAll(async () => {
  rulesBefore = iptablesRules();
  e = netEnv(203);
  www = `${e.dir}/www`;
  mkdirSync(www);
  writeFileSync(`${www}/index.html`, 'hello from a user namespace\n');
  // The plugins make their chains (and the bridge) on first use and keep them: make them before counting.
  await e.ok(['run', '-p', `${PORT}:80`, ROOTFS, 'true']);
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

async function fetchText(url: string): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return await (await fetch(url, { signal: AbortSignal.timeout(2000) })).text();
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('--userns with a bridge network (root)', () => {
  it('gets an address in its own user namespace, reaches another such container, and -p answers', async () => {
    const web = ['run', '-d', '--name', 'uweb', '--userns', '-p', `${PORT + 1}:80`, '-v', `${www}:/www:ro`];
    await e.ok([...web, ROOTFS, 'httpd', '-f', '-p', '80', '-h', '/www']);
    try {
      // A user namespace indeed: container root is not host root.
      expect(await e.ok(['exec', 'uweb', 'cat', '/proc/self/uid_map'])).not.toMatch(/^\s*0\s+0\s/);
      const addr = (await e.ok(['exec', 'uweb', 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).match(
        /inet (10\.89\.203\.\d+)\/24/,
      )?.[1];
      expect(addr).toBeDefined();
      const net = JSON.parse(await e.ok(['inspect', 'uweb']))[0].network;
      expect(net.address).toBe(addr);
      expect(await fetchText(`http://127.0.0.1:${PORT + 1}/`)).toBe('hello from a user namespace\n');
      const script = `ip -4 -o addr show eth0; ping -c 1 -W 2 ${addr} >/dev/null && echo ping ok; wget -qO- http://${addr}/`;
      const out = await e.ok(['run', '--userns', '--network', 'bridge', ROOTFS, 'sh', '-c', script]);
      expect(out).toMatch(/eth0\s+inet 10\.89\.203\.\d+\/24/);
      expect(out).toContain('ping ok\nhello from a user namespace\n');
    } finally {
      await e.ok(['rm', '-f', 'uweb']);
    }
  });

  it('a start that fails after the network was attached leaves nothing', async () => {
    const r = await e.cli(['run', '--userns', '-p', `${PORT + 2}:80`, ROOTFS, '/no/such/command']);
    expect(r.code).not.toBe(0);
  });
});
