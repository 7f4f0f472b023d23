// What a network adds to a start, in one interleaved run (round-robin, warm-up first):
//   nsbox run ROOTFS true                            vs  nsbox run --network bridge -p PORT:80 ROOTFS true
//   podman run --network none --rootfs ROOTFS true   vs  podman run --network bridge -p PORT:80 ...
//   rootless (an ordinary user): nsbox run ROOTFS true  vs  nsbox run -p PORT:80 ROOTFS true (pasta)
// then where nsbox's time goes: each CNI plugin's ADD and DEL, timed in-process.
// nsbox uses a bridge and subnet of the bench's own (nsbb0, 10.89.250.0/24); podman uses its default
// network. iptables chains the run created (CNI-*, NETAVARK*, NSBOX-*) are removed at the end.
// Run as root: `node bench/network.js [--n 20] [--warmup 3] [--user nobody]`.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timeOnce } from './external.js';
import { ms, summary, table } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const ROOTFS = join(ROOT, '.rootfs', 'busybox');
const CLI = join(ROOT, 'dist', 'run.js');
const BRIDGE = 'nsbb0';
const SUBNET = '10.89.250.0/24';
const PORT = 28580;

const option = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;

function rules() {
  const out = [];
  for (const t of ['filter', 'nat']) {
    for (const l of execFileSync('iptables-save', ['-t', t], { encoding: 'utf8' }).split('\n')) {
      if (l.startsWith('-A') || l.startsWith(':')) out.push(`${t} ${l.replace(/\[\d+:\d+\]/, '')}`);
    }
  }
  return out;
}

/** Remove the rules and chains (CNI-*, NETAVARK*, NSBOX-*) that appeared since `before`. */
function restoreRules(before) {
  const had = new Set(before);
  const now = rules().filter((r) => !had.has(r));
  const ipt = (args) => spawnSync('iptables', ['-w', ...args], { stdio: 'ignore' });
  for (const r of now) {
    const [table, ...rest] = r.split(' ');
    if (rest[0] !== '-A') continue;
    const words = rest
      .join(' ')
      .match(/"[^"]*"|\S+/g)
      .map((w) => w.replace(/^"|"$/g, ''));
    ipt(['-t', table, '-D', ...words.slice(1)]);
  }
  const chains = now
    .map((r) => r.split(' '))
    .filter(([, c]) => /^:(CNI-|NETAVARK|NSBOX-)/.test(c))
    .map(([t, c]) => [t, c.slice(1)]);
  for (const [t, c] of chains) ipt(['-t', t, '-F', c]);
  for (const [t, c] of chains) ipt(['-t', t, '-X', c]);
}

/** The bench's default network: nsbox's own kind (src/network/config.ts) on the bench's bridge and subnet. */
async function conflist() {
  const { bridgeConfList } = await import(join(ROOT, 'dist', 'network', 'config.js'));
  return bridgeConfList('nsbox', BRIDGE, SUBNET);
}

/** Each plugin's ADD and DEL, timed in this process (the CNI runner is what `run` uses). */
async function pluginTimes(dir, n) {
  const { activeList, execPlugin } = await import(join(ROOT, 'dist', 'network', 'cni.js'));
  const { createNetns, removeNetns } = await import(join(ROOT, 'dist', 'network', 'netns.js'));
  const list = activeList(await conflist(), 1);
  mkdirSync(join(dir, 'netns'), { recursive: true, mode: 0o700 });
  const t = {};
  const time = (key, f) => {
    const t0 = performance.now();
    const r = f();
    (t[key] ??= []).push(performance.now() - t0);
    return r;
  };
  for (let i = 0; i < n; i++) {
    const id = `bench${String(i).padStart(7, '0')}`;
    const ns = join(dir, 'netns', id);
    time('namespace file: make', () => createNetns(ns));
    const a = {
      containerId: id,
      netns: ns,
      ifname: 'eth0',
      portMappings: [{ hostPort: PORT, containerPort: 80, protocol: 'tcp' }],
    };
    let prev;
    for (const p of list.plugins) prev = time(`${p.type} ADD`, () => execPlugin('ADD', list, p, a, prev)) ?? prev;
    for (const p of [...list.plugins].reverse()) time(`${p.type} DEL`, () => execPlugin('DEL', list, p, a, prev));
    time('namespace file: remove', () => removeNetns(ns));
  }
  return t;
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root');
  if (!existsSync(join(ROOTFS, 'bin', 'busybox')))
    throw new Error(`no rootfs at ${ROOTFS}: run rootfs-scripts/busybox.sh ${ROOTFS}`);
  const n = Number(option('n', 20)),
    warmup = Number(option('warmup', 3)),
    user = option('user', 'nobody');
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-net-'));
  chmodSync(dir, 0o755);
  const rulesBefore = rules();
  const forwarding = execFileSync('sysctl', ['-n', 'net.ipv4.ip_forward'], { encoding: 'utf8' }).trim();
  mkdirSync(join(dir, 'net.d'));
  mkdirSync(join(dir, 'state'), { mode: 0o755 });
  Object.assign(process.env, { NSBOX_STATE_DIR: join(dir, 'state'), NSBOX_NETWORK_DIR: join(dir, 'net.d') });
  writeFileSync(join(dir, 'net.d', 'nsbox.conflist'), JSON.stringify(await conflist()));
  const node = process.execPath;
  const variants = [
    { key: 'nsbox-none', label: 'nsbox run ROOTFS true', argv: [node, CLI, 'run', ROOTFS, 'true'] },
    {
      key: 'nsbox-bridge',
      label: `nsbox run --network bridge -p ${PORT}:80`,
      argv: [node, CLI, 'run', '--network', 'bridge', '-p', `${PORT}:80`, ROOTFS, 'true'],
    },
  ];
  if (which('podman')) {
    const pod = [
      'podman',
      'run',
      '--rm',
      '--runtime',
      'runc',
      '--ulimit',
      'nofile=1024:20000',
      '--ulimit',
      'nproc=1024:1024',
    ];
    variants.push(
      {
        key: 'podman-none',
        label: 'podman run --network none',
        argv: [...pod, '--network', 'none', '--rootfs', ROOTFS, 'true'],
      },
      {
        key: 'podman-bridge',
        label: `podman run --network bridge -p ${PORT + 1}:80`,
        argv: [...pod, '--network', 'bridge', '-p', `${PORT + 1}:80`, '--rootfs', ROOTFS, 'true'],
      },
    );
  }
  // Rootless: the same CLI as an ordinary user, in a runtime directory of its own.
  if (which('pasta') && which('setpriv')) {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
    const run = join(dir, 'user-run');
    mkdirSync(run, { mode: 0o700 });
    execFileSync('chown', [`${uid}:${gid}`, run]);
    const as = [
      'env',
      '-i',
      `XDG_RUNTIME_DIR=${run}`,
      'PATH=/usr/bin:/bin:/usr/sbin:/sbin',
      'HOME=/',
      'setpriv',
      '--reuid',
      String(uid),
      '--regid',
      String(gid),
      '--clear-groups',
      '--inh-caps=-all',
      node,
      CLI,
      'run',
    ];
    variants.push(
      { key: 'rootless-none', label: `rootless (${user}) nsbox run ROOTFS true`, argv: [...as, ROOTFS, 'true'] },
      {
        key: 'rootless-pasta',
        label: `rootless (${user}) nsbox run -p ${PORT + 2}:80 (pasta)`,
        argv: [...as, '-p', `${PORT + 2}:80`, ROOTFS, 'true'],
      },
    );
  }
  const times = Object.fromEntries(variants.map((v) => [v.key, []]));
  try {
    for (let i = 0; i < warmup + n; i++) {
      for (const v of variants) {
        const t = await timeOnce(v.argv);
        if (i >= warmup) times[v.key].push(t);
      }
    }
    const med = (k) => (times[k] ? summary(times[k]).median : NaN);
    const rows = [['', 'median ms', 'p90 ms', 'added by the network']];
    for (const v of variants) {
      const s = summary(times[v.key]);
      const base =
        v.key.endsWith('bridge') || v.key.endsWith('pasta') ? med(v.key.replace(/-(bridge|pasta)$/, '-none')) : NaN;
      rows.push([v.label, ms(s.median), ms(s.p90), Number.isFinite(base) ? `+${ms(s.median - base)}` : '']);
    }
    console.log(`n=${n} each, interleaved\n`);
    table(rows);
    const t = await pluginTimes(dir, n);
    console.log('\nnsbox bridge, per step (in-process, median ms):\n');
    table([['step', 'median ms'], ...Object.entries(t).map(([k, v]) => [k, ms(summary(v).median)])]);
  } finally {
    spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
    restoreRules(rulesBefore);
    spawnSync('sysctl', ['-qw', `net.ipv4.ip_forward=${forwarding}`]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
