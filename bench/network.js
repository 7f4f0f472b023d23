// What a network adds to a start, in one interleaved run (round-robin, warm-up first), beside podman:
//   bridge + a published port: nsbox run --network bridge -p PORT:80  vs  nsbox run (none);
//                              podman run --network bridge -p ...      vs  podman run --network none
//   user-mode + a port (root): nsbox run --network slirp4netns -p ...  vs  podman run --network slirp4netns -p ...
//   rootless (an ordinary user): nsbox run -p PORT:80 (pasta)         vs  nsbox run
//                              (podman 4.3 has no pasta, and rootless podman fails on this hybrid-cgroup host:
//                              crun refuses it, runc needs cgroups; not run)
// with the ratio of nsbox's added time to podman's, and where nsbox's bridge time goes: every step of
// the measured runs themselves (NSBOX_NET_TRACE=1: each plugin's ADD and DEL, nsbox's own work).
// nsbox uses a bridge and subnet of the bench's own (nsbb0, 10.89.250.0/24); podman its default
// network (its backend, CNI or netavark, is printed). iptables chains the run created are removed at the end.
// Run as root: `node bench/network.js [--n 20] [--warmup 3] [--user nobody]`.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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
/** Runs argv once: its wall time in ms and its stderr. Fails on a non-zero exit. */
function timed(argv, env) {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', rej);
    p.on('exit', (code, signal) => {
      const t = performance.now() - t0;
      if (code === 0) res({ t, err });
      else rej(new Error(`${argv.join(' ')}: exit ${code ?? signal}: ${err.trim()}`));
    });
  });
}

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

/** NSBOX_NET_TRACE lines ("nsbox-net: STEP 12.34 ms") into { step: [ms, ...] }, with nsbox's own share. */
function addTrace(into, text) {
  const run = {};
  for (const m of text.matchAll(/^nsbox-net: (.+) ([\d.]+) ms$/gm)) {
    const key = run[m[1]] !== undefined ? `${m[1]} (end)` : m[1];
    run[key] = Number(m[2]);
  }
  const plugins = (re) =>
    Object.entries(run)
      .filter(([k]) => re.test(k))
      .reduce((a, [, v]) => a + v, 0);
  if (run['network set-up'] !== undefined) run['  nsbox own work in set-up'] = run['network set-up'] - plugins(/ ADD$/);
  if (run.teardown !== undefined) run['  nsbox own work in teardown'] = run.teardown - plugins(/ DEL$/);
  for (const [k, v] of Object.entries(run)) (into[k] ??= []).push(v);
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
  const nsbox = [node, '--', CLI, 'run'];
  // base: the variant whose time this one's network adds to; pair: the one it is compared with.
  const variants = [
    { key: 'nsbox-none', label: 'nsbox run ROOTFS true', argv: [...nsbox, ROOTFS, 'true'] },
    {
      key: 'nsbox-bridge',
      label: `nsbox run --network bridge -p ${PORT}:80`,
      argv: [...nsbox, '--network', 'bridge', '-p', `${PORT}:80`, ROOTFS, 'true'],
      base: 'nsbox-none',
      pair: 'podman-bridge',
      trace: true,
    },
    {
      key: 'nsbox-slirp',
      label: `nsbox run --network slirp4netns -p ${PORT + 3}:80`,
      argv: [...nsbox, '--network', 'slirp4netns', '-p', `${PORT + 3}:80`, ROOTFS, 'true'],
      base: 'nsbox-none',
      pair: 'podman-slirp',
    },
  ];
  let backend = '';
  if (which('podman')) {
    const info = () => spawnSync('podman', ['info', '--format', '{{.Host.NetworkBackend}}'], { encoding: 'utf8' });
    backend = info().stdout.trim() || info().stdout.trim() || 'backend unknown';
    const pod = ['podman', 'run', '--rm', '--runtime', 'runc'];
    pod.push('--ulimit', 'nofile=1024:20000', '--ulimit', 'nproc=1024:1024');
    const none = [...pod, '--network', 'none', '--rootfs', ROOTFS, 'true'];
    const bridge = [...pod, '--network', 'bridge', '-p', `${PORT + 1}:80`, '--rootfs', ROOTFS, 'true'];
    const slirp = [...pod, '--network', 'slirp4netns', '-p', `${PORT + 4}:80`, '--rootfs', ROOTFS, 'true'];
    variants.push(
      { key: 'podman-none', label: 'podman run --network none', argv: none },
      {
        key: 'podman-bridge',
        label: `podman run --network bridge -p ${PORT + 1}:80 (${backend})`,
        argv: bridge,
        base: 'podman-none',
      },
      {
        key: 'podman-slirp',
        label: `podman run --network slirp4netns -p ${PORT + 4}:80`,
        argv: slirp,
        base: 'podman-none',
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
    const as = ['env', '-i', `XDG_RUNTIME_DIR=${run}`, 'PATH=/usr/bin:/bin:/usr/sbin:/sbin', 'HOME=/'];
    as.push('setpriv', '--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--inh-caps=-all');
    as.push(node, '--', CLI, 'run');
    variants.push(
      { key: 'rootless-none', label: `rootless (${user}) nsbox run ROOTFS true`, argv: [...as, ROOTFS, 'true'] },
      {
        key: 'rootless-pasta',
        label: `rootless (${user}) nsbox run -p ${PORT + 2}:80 (pasta)`,
        argv: [...as, '-p', `${PORT + 2}:80`, ROOTFS, 'true'],
        base: 'rootless-none',
      },
    );
  }
  const times = Object.fromEntries(variants.map((v) => [v.key, []]));
  const steps = {};
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const loadBefore = load();
  try {
    for (let i = 0; i < warmup + n; i++) {
      for (const v of variants) {
        const env = v.trace ? { ...process.env, NSBOX_NET_TRACE: '1' } : process.env;
        // A shared machine: another user of podman can make one run fail (e.g. /run/libpod/alive); twice more.
        const { t, err } = await timed(v.argv, env)
          .catch(() => timed(v.argv, env))
          .catch(() => timed(v.argv, env));
        if (i < warmup) continue;
        times[v.key].push(t);
        if (v.trace) addTrace(steps, err);
      }
    }
    const med = (k) => (times[k]?.length ? summary(times[k]).median : NaN);
    const added = (v) => (v.base ? med(v.key) - med(v.base) : NaN);
    const rows = [['', 'median ms', 'p90 ms', 'added by the network', 'nsbox/podman added']];
    for (const v of variants) {
      const s = summary(times[v.key]);
      const pair = v.pair && variants.find((x) => x.key === v.pair);
      // A ratio only of two positive additions (on a busy machine a median difference can come out below 0).
      const ratio = pair && added(v) > 0 && added(pair) > 0 ? added(v) / added(pair) : NaN;
      rows.push([
        v.label,
        ms(s.median),
        ms(s.p90),
        Number.isFinite(added(v)) ? `${added(v) >= 0 ? '+' : ''}${ms(added(v))}` : '',
        Number.isFinite(ratio) ? ratio.toFixed(2) : '',
      ]);
    }
    console.log(`n=${n} each, interleaved; load average ${loadBefore} before, ${load()} after`);
    if (backend) console.log(`podman's network backend: ${backend}`);
    console.log('');
    table(rows);
    console.log('\nnsbox --network bridge -p: where the time goes (the measured runs, median ms):\n');
    table([['step', 'median ms'], ...Object.entries(steps).map(([k, v]) => [k, ms(summary(v).median)])]);
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
