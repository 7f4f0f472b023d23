// `run --network` end to end, as root, with Debian's real CNI plugins on a bridge and subnet of this
// file's own: published ports answer from the host, names resolve on a network and not across,
// container: shares localhost, and every container leaves the host's links, iptables rules,
// host-local leases and namespace files as they were.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import {
  expectOursLeft,
  iptablesRules,
  netEnv,
  ours,
  netState,
  restoreCniRules,
  ROOTFS,
  sh,
  type NetEnv,
} from './util.js';

let e: NetEnv;
let rulesBefore: string[];
let www: string;
const PORT = 28180;

beforeAll(async () => {
  rulesBefore = iptablesRules();
  e = netEnv(202);
  www = `${e.dir}/www`;
  mkdirSync(www);
  writeFileSync(`${www}/index.html`, 'hello from nsbox\n');
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

const httpd = (name: string, more: string[] = []) =>
  e.ok(['run', '-d', '--name', name, ...more, '-v', `${www}:/www:ro`, ROOTFS, 'httpd', '-f', '-p', '80', '-h', '/www']);

/** Until something answers at url from the host (httpd needs a moment after run -d returns). */
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

describe('--network and -p', () => {
  it('the default is lo only, as before', async () => {
    const out = await e.ok(['run', ROOTFS, 'sh', '-c', 'ls /sys/class/net; ls /etc']);
    expect(out.split('\n').filter((l) => l === 'lo' || l.startsWith('eth'))).toEqual(['lo']);
  });

  it('-p publishes a port through portmap: the host, the container itself (hairpin), port, ps', async () => {
    await httpd('web', ['-p', `${PORT}:80`, '-p', `${PORT}:53/udp`]);
    try {
      expect(await fetchText(`http://127.0.0.1:${PORT}/`)).toBe('hello from nsbox\n');
      expect(await e.ok(['port', 'web'])).toBe(`80/tcp -> 0.0.0.0:${PORT}\n53/udp -> 0.0.0.0:${PORT}\n`);
      expect(await e.ok(['port', 'web', '80'])).toBe(`0.0.0.0:${PORT}\n`);
      expect(await e.ok(['ps'])).toContain(`0.0.0.0:${PORT}->80/tcp, 0.0.0.0:${PORT}->53/udp`);
      const ip = JSON.parse(await e.ok(['network', 'inspect', 'nsbox']))[0].containers[0].address;
      expect(ip).toMatch(/^10\.89\.202\.\d+$/);
      // Hairpin: the container reaches its own published port, through the host's side of the bridge.
      const self = await e.ok(['exec', 'web', 'wget', '-qO-', `http://10.89.202.1:${PORT}/`]);
      expect(self).toBe('hello from nsbox\n');
      expect(await e.ok(['exec', 'web', 'cat', '/etc/hosts'])).toContain(`${ip}\tweb`);
      expect(await e.ok(['exec', 'web', 'cat', '/etc/hostname'])).toBe('web\n');
      expect(await e.ok(['exec', 'web', 'cat', '/etc/resolv.conf'])).toMatch(/^nameserver /m);
      expect(await e.ok(['exec', 'web', 'cat', '/etc/resolv.conf'])).not.toMatch(/nameserver 127\./);
    } finally {
      await e.ok(['rm', '-f', 'web']);
    }
  });

  it('no host fd reaches the command (the namespace fd is closed after setns); inspect shows the network', async () => {
    const fds = await e.ok([
      'run',
      '--network',
      'bridge',
      '--read-only',
      ROOTFS,
      'sh',
      '-c',
      'ls /proc/self/fd; echo x >> /etc/hosts',
    ]);
    expect(fds.trim().split('\n').sort()).toEqual(['0', '1', '2', '3']); // 3: ls's own directory
    const id = (
      await e.ok(['run', '-d', '--network', 'bridge', '--network-alias', 'w2', ROOTFS, 'sleep', '100'])
    ).trim();
    try {
      const net = JSON.parse(await e.ok(['inspect', id]))[0].network;
      expect(net).toMatchObject({ mode: 'bridge', name: 'nsbox', ports: [], aliases: ['w2'] });
      expect(net.address).toMatch(/^10\.89\.202\.\d+$/);
    } finally {
      await e.ok(['rm', '-f', id]);
    }
  });

  it('the files are not written into the rootfs', async () => {
    const hosts = (() => {
      try {
        return readFileSync(`${ROOTFS}/etc/hosts`, 'utf8');
      } catch {
        return null;
      }
    })();
    const out = await e.ok([
      'run',
      '--network',
      'bridge',
      '--add-host',
      'db.example:10.1.2.3',
      '--dns',
      '10.0.0.1',
      ROOTFS,
      'sh',
      '-c',
      'cat /etc/hosts /etc/resolv.conf; echo changed >> /etc/hosts',
    ]);
    expect(out).toContain('10.1.2.3\tdb.example');
    expect(out).toContain('nameserver 10.0.0.1');
    const now = (() => {
      try {
        return readFileSync(`${ROOTFS}/etc/hosts`, 'utf8');
      } catch {
        return null;
      }
    })();
    expect(now === null || now === '' ? '' : now).toBe(hosts === null || hosts === '' ? '' : hosts);
  });

  it("host sees the host's links; container:NAME shares the other's localhost", async () => {
    const links = (await e.ok(['run', '--network', 'host', ROOTFS, 'ls', '/sys/class/net'])).trim().split('\n').sort();
    expect(links).toEqual(sh('ls /sys/class/net').trim().split('\n').sort());
    await httpd('pod');
    try {
      const out = await e.ok([
        'run',
        '--network',
        'container:pod',
        ROOTFS,
        'sh',
        '-c',
        'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1/ && break; sleep 0.2; done',
      ]);
      expect(out).toBe('hello from nsbox\n');
    } finally {
      await e.ok(['rm', '-f', 'pod']);
    }
    // On a bridge, the sidecar shares its /etc/hosts too.
    await httpd('pod2', ['--network', 'bridge']);
    try {
      const hosts = await e.ok([
        'run',
        '--network',
        'container:pod2',
        ROOTFS,
        'sh',
        '-c',
        'cat /etc/hosts; ls /sys/class/net',
      ]);
      expect(hosts).toMatch(/^10\.89\.202\.\d+\tpod2$/m);
      expect(hosts).toMatch(/^eth0$/m);
    } finally {
      await e.ok(['rm', '-f', 'pod2']);
    }
  });

  it('containers on one network reach each other by name and alias; not across networks', async () => {
    await e.ok(['network', 'create', '--subnet', '10.89.203.0/24', 'nt-a']);
    await e.ok(['network', 'create', '--subnet', '10.89.204.0/24', 'nt-b']);
    try {
      await httpd('a1', ['--network', 'nt-a', '--network-alias', 'db']);
      await httpd('b1', ['--network', 'nt-b']);
      const bIp = JSON.parse(await e.ok(['network', 'inspect', 'nt-b']))[0].containers[0].address;
      const wait = 'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://a1/ && break; sleep 0.2; done';
      const script = `${wait}; wget -qO- http://db/;
        nc -w 1 ${bIp} 80 </dev/null && echo REACHED || echo blocked`;
      const out = await e.ok(['run', '--network', 'nt-a', ROOTFS, 'sh', '-c', script]);
      expect(out).toBe('hello from nsbox\nhello from nsbox\nblocked\n');
      // a1 learnt of the newcomer while it ran, and forgot it when it left.
      expect(await e.ok(['exec', 'a1', 'cat', '/etc/hosts'])).not.toContain('10.89.203.3');
      const rm = await e.cli(['network', 'rm', 'nt-a']);
      expect(rm.code).toBe(125);
      expect(rm.stderr).toBe('nsbox: network nt-a is in use by container a1\n');
    } finally {
      await e.cli(['rm', '-f', 'a1', 'b1']);
      await e.ok(['network', 'rm', 'nt-a', 'nt-b']);
    }
    expect(await e.ok(['network', 'ls', '-q'])).toBe('nsbox\n');
  });

  it("the network's isolation rules are made again when something removed them", async () => {
    const jump = ['NSBOX-FORWARD', '-i', e.bridge, '!', '-o', e.bridge];
    const rule = [...jump, '-m', 'comment', '--comment', 'nsbox network', '-j', 'NSBOX-ISOLATION'];
    sh(`iptables -w -D ${rule.map((w) => `'${w}'`).join(' ')}`);
    expect(iptablesRules().some((r) => r.includes(`-i ${e.bridge} ! -o ${e.bridge}`))).toBe(false);
    await e.ok(['run', '--network', 'bridge', ROOTFS, 'true']);
    expect(iptablesRules().some((r) => r.includes(`-i ${e.bridge} ! -o ${e.bridge}`))).toBe(true);
  });

  it('a conflist dropped in the directory is a network: ptp, no bridge', async () => {
    const list = {
      cniVersion: '1.0.0',
      name: 'nt-ptp',
      plugins: [
        {
          type: 'ptp',
          ipMasq: false,
          ipam: { type: 'host-local', dataDir: e.ipam, ranges: [[{ subnet: '10.89.212.0/24' }]] },
        },
      ],
    };
    writeFileSync(`${e.netDir}/nt-ptp.conflist`, JSON.stringify(list));
    try {
      const out = await e.ok(['run', '--network', 'nt-ptp', ROOTFS, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
      expect(out).toMatch(/inet 10\.89\.212\.\d+\/24/);
    } finally {
      await e.ok(['network', 'rm', 'nt-ptp']);
    }
  });

  it('a taken port and an unknown network are one-line errors that leave nothing', async () => {
    const server = (await import('node:net')).createServer();
    await new Promise<void>((r) => server.listen(PORT + 1, '127.0.0.1', r));
    try {
      const r = await e.cli(['run', '-p', `${PORT + 1}:80`, ROOTFS, 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toBe(`nsbox: host port 0.0.0.0:${PORT + 1}/tcp is already in use\n`);
    } finally {
      server.close();
    }
    const u = await e.cli(['run', '--network', 'nope', ROOTFS, 'true']);
    expect(u.code).toBe(125);
    expect(u.stderr).toBe('nsbox: no such network: nope (see: nsbox network ls)\n');
    const cases: [string[], string][] = [
      [
        ['--network', 'pasta'],
        '--network pasta is for rootless containers: pasta does not run as root (use bridge or slirp4netns)',
      ],
      [
        ['--userns', '--network', 'host'],
        "--network host cannot be used with a user namespace: its root has no power over the host's network",
      ],
    ];
    for (const [args, msg] of cases) {
      const r = await e.cli(['run', ...args, ROOTFS, 'true']);
      expect(r.stderr).toBe(`nsbox: ${msg}\n`);
      expect(r.code).toBe(125);
    }
    // --userns as root: slirp4netns works (the container keeps its own /etc files: it cannot enter the state).
    const sl = await e.ok([
      'run',
      '--userns',
      '--network',
      'slirp4netns',
      ROOTFS,
      'ip',
      '-4',
      '-o',
      'addr',
      'show',
      'tap0',
    ]);
    expect(sl).toMatch(/inet 10\.0\.2\.100\/24/);
    const bad = await e.cli(['run', '-p', '99999:80', ROOTFS, 'true']);
    expect(bad.stderr).toBe('nsbox: invalid host port: 99999 (1 to 65535)\n');
    expect(bad.code).toBe(125);
    // Two containers cannot publish the same host port.
    await httpd('p1', ['-p', `${PORT + 2}:80`]);
    try {
      const again = await e.cli(['run', '-p', `${PORT + 2}:80`, ROOTFS, 'true']);
      expect(again.stderr).toBe(`nsbox: host port 0.0.0.0:${PORT + 2}/tcp is already in use by another container\n`);
    } finally {
      await e.ok(['rm', '-f', 'p1']);
    }
  });

  it('-d --rm, and a start that fails after the network was attached, leave nothing', async () => {
    const id = (await e.ok(['run', '-d', '--rm', '-p', `${PORT + 4}:80`, ROOTFS, 'sleep', '0.3'])).trim();
    expect(netState(e).records).toContain(id);
    for (let i = 0; i < 100 && netState(e).records.includes(id); i++) await new Promise((r) => setTimeout(r, 100));
    expect(netState(e).records).not.toContain(id);
    const r = await e.cli(['run', '--network', 'bridge', '-p', `${PORT + 5}:80`, ROOTFS, 'no-such-command']);
    expect(r.code).toBe(127);
    expect(r.stderr).toBe('nsbox: executable file not found in rootfs: no-such-command\n');
  });

  it('20 containers started at once get distinct addresses and leave nothing', async () => {
    const runs = await Promise.all(
      Array.from({ length: 20 }, () =>
        e.cli(['run', '--network', 'bridge', ROOTFS, 'sh', '-c', 'ip -4 -o addr show eth0']),
      ),
    );
    for (const r of runs) expect(r.stderr).toBe('');
    const ips = runs.map((r) => /inet (10\.89\.202\.\d+)\//.exec(r.stdout)?.[1]);
    expect(ips.every(Boolean)).toBe(true);
    expect(new Set(ips).size).toBe(20);
  }, 120_000);

  it("a SIGKILLed monitor's network is released by the next command", async () => {
    const id = (await httpd('orphan', ['-p', `${PORT + 3}:80`])).trim();
    const st = JSON.parse(readFileSync(`${e.state}/${id}/state.json`, 'utf8'));
    expect(netState(e).records).toContain(id);
    process.kill(st.monitor.pid, 'SIGKILL');
    for (
      let i = 0;
      i < 50 &&
      (() => {
        try {
          process.kill(st.monitor.pid, 0);
          return true;
        } catch {
          return false;
        }
      })();
      i++
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await e.ok(['ps', '-a']);
    expect(netState(e).records).not.toContain(id);
    await e.ok(['rm', '-f', 'orphan']);
  });
});
