// The CLI against Node's floor (issue 16, target 3): `node -e 0` beside `nsbox run ROOTFS /bin/true`,
// `exec`, `ps` and `stats --no-stream` with many containers present, in one interleaved run (round-robin,
// warm-up first). Prints medians, p90 and each one's difference to the floor ("paired": the median of
// each round's difference to that round's `node -e 0`, steadier on a busy machine). Run as root:
//   node bench/cli.js [--n 30] [--containers 100] [--compare OTHER_CHECKOUT] [--nice] [--cpu]
//   --containers N   detached `sleep` containers present for exec, ps and stats (default 100)
//   --compare DIR    also time DIR/dist/run.js (e.g. a build of main) for the same commands
//   --nice           run at nice -20 (children too): steadier figures on a busy machine
//   --cpu            CPU time (perf stat's task-clock: the process and all it starts, the container's
//                    set-up and command too) instead of wall time: what other load on a machine disturbs least
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timeOnce } from './external.js';
import { ms, summary, table } from './stats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROOTFS = join(ROOT, '.rootfs', 'busybox');

function option(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
}

const N = Number(option('n', 30));
const COUNT = Number(option('containers', 100));
const compare = option('compare', null);
const cpu = process.argv.includes('--cpu');
if (process.argv.includes('--nice')) setPriority(0, -20);
if (!existsSync(join(ROOT, 'dist', 'run.js'))) throw new Error('dist/ is missing: run `npm install` first');
if (!existsSync(`${ROOTFS}/bin/busybox`)) execFileSync('sh', [join(ROOT, 'rootfs-scripts', 'busybox.sh'), ROOTFS]);

// Containers of this bench only: a state directory of its own.
const state = mkdtempSync(join(tmpdir(), 'nsbox-bench-cli-'));
chmodSync(state, 0o755);
const env = { ...process.env, NSBOX_STATE_DIR: state };
const empty = join(state, 'empty.cjs');
writeFileSync(empty, '');
const cli = (dir, args) => [process.execPath, '--', join(dir, 'dist', 'run.js'), ...args];
const sh = (argv) => execFileSync(argv[0], argv.slice(1), { env, encoding: 'utf8' });

/** CPU ms of one run (perf stat's task-clock, as perf stat -x, prints it). */
function cpuOnce(argv) {
  return new Promise((resolve, reject) => {
    const p = spawn('perf', ['stat', '-x,', '-e', 'task-clock', '--', ...argv], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      const m = /^([\d.]+),msec,task-clock/m.exec(err);
      if (code === 0 && m) resolve(Number(m[1]));
      else reject(new Error(`perf stat ${argv.join(' ')}: exit ${code ?? signal}: ${err.trim()}`));
    });
  });
}

function cleanup() {
  try {
    const ids = sh(cli(ROOT, ['ps', '-aq']))
      .split('\n')
      .filter(Boolean);
    for (let i = 0; i < ids.length; i += 50) sh(cli(ROOT, ['rm', '-f', ...ids.slice(i, i + 50)]));
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  process.stderr.write(`starting ${COUNT} detached containers...`);
  for (let i = 0; i < COUNT; i++) sh(cli(ROOT, ['run', '-d', '--name', `c${i}`, ROOTFS, 'sleep', '100000']));
  process.stderr.write(' done\n');
  const variants = [
    ['node -e 0 (the floor)', [process.execPath, '-e', '0']],
    ['node EMPTY.cjs', [process.execPath, empty]],
  ];
  const add = (dir, tag) => {
    variants.push(
      [`${tag}version`, cli(dir, ['version'])],
      [`${tag}run ROOTFS /bin/true`, cli(dir, [ROOTFS, '/bin/true'])],
      [`${tag}exec c0 /bin/true`, cli(dir, ['exec', 'c0', '/bin/true'])],
      [`${tag}ps (${COUNT} running)`, cli(dir, ['ps'])],
      [`${tag}stats --no-stream c0`, cli(dir, ['stats', '--no-stream', 'c0'])],
      [`${tag}stats --no-stream (${COUNT})`, cli(dir, ['stats', '--no-stream'])],
    );
  };
  add(ROOT, '');
  if (compare) add(resolve(compare), 'compare: ');
  const times = variants.map(() => []);
  const once = (argv) => (cpu ? cpuOnce(argv) : timeOnce(argv, env));
  for (const [, argv] of variants) for (let w = 0; w < 3; w++) await once(argv); // warm-up, code caches
  for (let i = 0; i < N; i++) {
    for (const [k, [, argv]] of variants.entries()) times[k].push(await once(argv));
  }
  const floor = summary(times[0]).median;
  // Each round's difference to that round's floor: load that comes and goes shifts both alike.
  const paired = (k) => summary(times[k].map((t, i) => t - times[0][i])).median;
  const rows = [['command', 'median ms', 'p90 ms', 'min ms', 'median - floor', 'paired - floor', 'x floor']];
  for (const [k, [label]] of variants.entries()) {
    const s = summary(times[k]);
    const x = (s.median / floor).toFixed(2);
    rows.push([label, ms(s.median), ms(s.p90), ms(s.min), ms(s.median - floor), ms(paired(k)), x]);
  }
  const what = cpu ? 'CPU time (task-clock)' : 'wall time';
  console.log(`nsbox CLI beside node -e 0, ${what}; N=${N} each, interleaved; ${COUNT} containers present`);
  console.log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  table(rows);
} finally {
  cleanup();
}
