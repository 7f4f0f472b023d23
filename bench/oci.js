// nsbox-runtime beside runc and crun, interleaved in one run (not a test; as root): `node bench/oci.js [--n N]`.
//  1. the runtime alone: create, start, the exit of /bin/true (seen in /proc, no runtime call), delete;
//  2. podman run --rm IMAGE /bin/true with --runtime each (a temp podman store, an image imported from
//     the busybox rootfs, no network).
// Each round runs every variant once, in turn, so that a noisy shared machine weighs on all alike;
// medians of N rounds (default 10) in ms, and the ratio to runc. What one nsbox-runtime call costs
// before it does anything: `node -e 0` (a Node start) and `nsbox-runtime --version` (plus the bundle).
// crun 1.8 refuses this hybrid cgroup host while /sys/fs/cgroup/unified is mounted: each crun call (and
// podman's, with crun) runs in a private mount namespace without it; `wrapper` is that cost alone.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROOTFS = join(ROOT, '.rootfs', 'busybox');
const NSBOX = join(ROOT, 'dist', 'nsbox-runtime');
const i = process.argv.indexOf('--n');
const N = i < 0 ? 10 : Number(process.argv[i + 1]);
const which = (c) => spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim() || null;
const hybrid = existsSync('/sys/fs/cgroup/unified/cgroup.procs');
const WRAP = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup/unified; exec "$0" "$@"'];
const wrap = (argv) => (hybrid ? [...WRAP, ...argv] : argv);
const RUNTIMES = [
  { name: 'nsbox-runtime', bin: NSBOX, argv: (a) => [NSBOX, ...a] },
  { name: 'runc', bin: which('runc'), argv: (a) => [which('runc'), ...a] },
  { name: 'crun', bin: which('crun'), argv: (a) => wrap([which('crun'), ...a]) },
].filter((r) => r.bin);

const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-oci-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(argv, opts = {}) {
  const t = process.hrtime.bigint();
  // No pipes: a created container keeps the runtime's stdio open, and spawnSync would wait for it.
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', ...opts });
  if (r.status !== 0 && !opts.anyStatus) throw new Error(`${argv.join(' ')}: exit status ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}
const alive = (pid) => {
  try {
    return !/^[ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]);
  } catch {
    return false;
  }
};

/** One create, start, exit, delete; [create, start, exit, delete, total] in ms. */
function cycle(rt, state, bundle, id) {
  const pidFile = join(dir, `${id}.pid`);
  const c = time(rt.argv(['--root', state, 'create', '--bundle', bundle, '--pid-file', pidFile, id]));
  const pid = Number(readFileSync(pidFile, 'utf8'));
  const s = time(rt.argv(['--root', state, 'start', id]));
  const t0 = process.hrtime.bigint();
  while (alive(pid));
  const e = Number(process.hrtime.bigint() - t0) / 1e6;
  const d = time(rt.argv(['--root', state, 'delete', id]));
  return [c, s, e, d, c + s + e + d];
}

try {
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle);
  spawnSync(NSBOX, ['spec'], { cwd: bundle });
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  spec.root = { path: ROOTFS, readonly: true };
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));

  const variants = [
    { label: 'node -e 0', run: () => [time([process.execPath, '-e', '0'])] },
    { label: 'nsbox-runtime --version', run: () => [time([NSBOX, '--version'])] },
  ];
  if (hybrid) variants.push({ label: 'wrapper (crun)', run: () => [time(wrap(['true']))] });
  let k = 0;
  for (const rt of RUNTIMES) {
    const state = join(dir, `state-${rt.name}`);
    try {
      cycle(rt, state, bundle, 'probe');
    } catch (e) {
      console.log(`${rt.name}: fails here (${e.message})`);
      continue;
    }
    variants.push({ label: rt.name, key: rt.name, run: () => cycle(rt, state, bundle, `b${k++}`) });
  }
  const podman = which('podman');
  if (podman) {
    const g = ['--root', join(dir, 'pm'), '--runroot', join(dir, 'pmrun'), '--storage-driver', 'vfs'];
    g.push('--cgroup-manager', 'cgroupfs', '--events-backend', 'none');
    spawnSync('tar', ['-C', ROOTFS, '-cf', join(dir, 'bb.tar'), '.']);
    time([podman, ...g, 'import', '--quiet', join(dir, 'bb.tar'), 'localhost/bench-bb']);
    const run = ['run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:20000', '--ulimit', 'nproc=1024:1024'];
    run.push('localhost/bench-bb', '/bin/true');
    for (const rt of RUNTIMES) {
      const argv = [podman, ...g, '--runtime', rt.bin, ...run];
      const full = rt.name === 'crun' ? wrap(argv) : argv;
      if (spawnSync(full[0], full.slice(1), { stdio: 'ignore' }).status !== 0) {
        console.log(`podman run --rm (${rt.name}): fails here`);
        continue;
      }
      variants.push({ label: `podman run --rm (${rt.name})`, key: `podman-${rt.name}`, run: () => [time(full)] });
    }
  }

  const samples = variants.map(() => []);
  for (let round = 0; round <= N; round++) {
    variants.forEach((v, j) => {
      const x = v.run();
      if (round > 0) samples[j].push(x); // round 0 warms up
    });
  }
  const med = samples.map((s) => s[0].map((_, c) => median(s.map((x) => x[c]))));
  const total = (key) => {
    const j = variants.findIndex((v) => v.key === key);
    return j < 0 ? undefined : med[j][med[j].length - 1];
  };
  const rows = [['', 'create', 'start', 'exit', 'delete', 'total', 'x runc']];
  variants.forEach((v, j) => {
    const m = med[j];
    const ref = v.key?.startsWith('podman-') ? total('podman-runc') : v.key ? total('runc') : undefined;
    const ratio = ref ? (m[m.length - 1] / ref).toFixed(2) : '';
    const cells = m.length === 1 ? ['', '', '', '', m[0].toFixed(1)] : m.map((x) => x.toFixed(1));
    rows.push([v.label, ...cells, ratio]);
  });
  const w = rows[0].map((_, j) => Math.max(...rows.map((r) => String(r[j]).length)));
  console.log(
    `median of ${N} interleaved rounds, ms; load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  for (const r of rows)
    console.log(r.map((c, j) => (j ? String(c).padStart(w[j]) : String(c).padEnd(w[j]))).join('  '));
  if (podman) {
    const g = ['--root', join(dir, 'pm'), '--runroot', join(dir, 'pmrun'), '--storage-driver', 'vfs'];
    time([podman, ...g, 'rmi', '-af'], { anyStatus: true });
  }
} finally {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}
