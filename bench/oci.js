// nsbox-runtime beside crun and runc (not a test; as root): `node bench/oci.js [--n N]`.
//  1. the runtime alone: create, start, wait for the exit, delete, on a busybox bundle running /bin/true;
//  2. podman run --rm IMAGE /bin/true with --runtime each (a temp podman store, an image imported from
//     the busybox rootfs, no network).
// Medians of N runs (default 10) in milliseconds; `node -e 0` and `nsbox-runtime --version` show what
// a Node start costs of each nsbox-runtime call.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROOTFS = join(ROOT, '.rootfs', 'busybox');
const NSBOX = join(ROOT, 'dist', 'nsbox-runtime');
const i = process.argv.indexOf('--n');
const N = i < 0 ? 10 : Number(process.argv[i + 1]);
const which = (c) => spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim() || null;
const RUNTIMES = [
  ['nsbox-runtime', NSBOX],
  ['crun', which('crun')],
  ['runc', which('runc')],
].filter(([, p]) => p);

const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-oci-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(argv, opts = {}) {
  const t = process.hrtime.bigint();
  // No pipes: a created container keeps the runtime's stdio open, and spawnSync would wait for it.
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', ...opts });
  if (r.status !== 0 && !opts.anyStatus) throw new Error(`${argv.join(' ')}: exit status ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

try {
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle);
  spawnSync(NSBOX, ['spec'], { cwd: bundle });
  const spec = JSON.parse(spawnSync('cat', [join(bundle, 'config.json')], { encoding: 'utf8' }).stdout);
  spec.root = { path: ROOTFS, readonly: true };
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));

  const rows = [['', 'create', 'start', 'exit', 'delete', 'total']];
  rows.push([
    'node -e 0',
    '',
    '',
    '',
    '',
    median(Array.from({ length: N }, () => time([process.execPath, '-e', '0']))).toFixed(1),
  ]);
  rows.push([
    'nsbox-runtime --version',
    '',
    '',
    '',
    '',
    median(Array.from({ length: N }, () => time([NSBOX, '--version']))).toFixed(1),
  ]);
  for (const [name, bin] of RUNTIMES) {
    const state = join(dir, `state-${name}`);
    const probe = spawnSync(bin, ['--root', state, 'create', '--bundle', bundle, 'probe'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
      timeout: 10_000,
    });
    spawnSync(bin, ['--root', state, 'delete', '--force', 'probe'], { stdio: 'ignore' });
    if (probe.status !== 0) {
      rows.push([`${name}: fails here (${probe.stderr.trim().split('\n').pop()})`, '', '', '', '', '']);
      continue;
    }
    const cols = [[], [], [], [], []];
    for (let k = 0; k < N + 1; k++) {
      const id = `b${k}`;
      const c = time([bin, '--root', state, 'create', '--bundle', bundle, id]);
      const s = time([bin, '--root', state, 'start', id]);
      const t0 = process.hrtime.bigint();
      for (;;) {
        const st = spawnSync(bin, ['--root', state, 'state', id], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        });
        if (JSON.parse(st.stdout).status === 'stopped') break;
      }
      const e = Number(process.hrtime.bigint() - t0) / 1e6;
      const d = time([bin, '--root', state, 'delete', id]);
      if (k === 0) continue; // warm-up
      [c, s, e, d, c + s + e + d].forEach((v, j) => cols[j].push(v));
    }
    rows.push([name, ...cols.map((x) => median(x).toFixed(1))]);
  }
  const podman = which('podman');
  if (podman) {
    const g = [
      '--root',
      join(dir, 'pm'),
      '--runroot',
      join(dir, 'pmrun'),
      '--storage-driver',
      'vfs',
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'none',
    ];
    spawnSync('tar', ['-C', ROOTFS, '-cf', join(dir, 'bb.tar'), '.']);
    time([podman, ...g, 'import', '--quiet', join(dir, 'bb.tar'), 'localhost/bench-bb']);
    const run = [
      'run',
      '--rm',
      '--network',
      'none',
      '--ulimit',
      'nofile=1024:20000',
      '--ulimit',
      'nproc=1024:1024',
      'localhost/bench-bb',
      '/bin/true',
    ];
    for (const [name, bin] of RUNTIMES) {
      if (spawnSync(podman, [...g, '--runtime', bin, ...run], { stdio: 'ignore' }).status !== 0) {
        rows.push([`podman run --rm (${name}): fails here`, '', '', '', '', '']);
        continue;
      }
      rows.push([
        `podman run --rm (${name})`,
        '',
        '',
        '',
        '',
        median(Array.from({ length: N }, () => time([podman, ...g, '--runtime', bin, ...run]))).toFixed(1),
      ]);
    }
    time([podman, ...g, 'rmi', '-af'], { anyStatus: true });
  }
  const w = rows[0].map((_, j) => Math.max(...rows.map((r) => String(r[j]).length)));
  for (const r of rows)
    console.log(r.map((c, j) => (j ? String(c).padStart(w[j]) : String(c).padEnd(w[j]))).join('  '));
} finally {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}
