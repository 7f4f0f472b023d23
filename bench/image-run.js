// Run from an image vs run from a directory (not a test), as root: the same root filesystem imported
// as an image of 4 layers (bench/image-layout.js) into a scratch store, then `nsbox run --rm IMAGE
// /bin/true` and `nsbox run --rm DIR /bin/true` alternated in one loop, so that a busy moment of the
// machine weighs on both alike.
//   node bench/image-run.js [--rootfs DIR (default .rootfs/busybox)] [--runs N (default 40)] [--warmup W (5)]
//                           [--nice (at nice -20, children too: steadier on a busy machine)]
// Prints medians, the difference (target: within 10 ms) and the ratio, and each variant's CPU time
// (user + system of nsbox and the container, a mean per run), which a busy machine disturbs less.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, setPriority } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timeOnce } from './external.js';
import { layout } from './image-layout.js';
import { ms, summary, table } from './stats.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'run.js');
const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const rootfs = resolve(opt('rootfs', join(ROOT, '.rootfs', 'busybox')));
const RUNS = Number(opt('runs', 40)),
  WARMUP = Number(opt('warmup', 5));
if (process.argv.includes('--nice')) setPriority(-20);
/** User + system CPU ms of the children waited for so far (/proc/self/stat cutime, cstime: ticks of 10 ms). */
const childCpu = () => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
};
const work = mkdtempSync('/tmp/nsbox-bench-image-run-');
process.env.NSBOX_STORAGE_DIR = `${work}/store`;
process.env.NSBOX_STATE_DIR = `${work}/state`;
mkdirSync(process.env.NSBOX_STATE_DIR);
try {
  const info = layout(`${work}/oci`, rootfs);
  const tar = execFileSync('tar', ['-C', `${work}/oci`, '-c', '.'], { maxBuffer: 1 << 30 });
  execFileSync(process.execPath, [CLI, 'import', '--name', 'bench/run:1', '-'], { input: tar, stdio: 'pipe' });
  const argv = (root) => [process.execPath, '--', CLI, 'run', '--rm', root, '/bin/true'];
  const img = [],
    dir = [],
    cpu = { img: 0, dir: 0 };
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const c0 = childCpu();
    const a = await timeOnce(argv('bench/run:1'));
    const c1 = childCpu();
    const b = await timeOnce(argv(rootfs));
    if (i < WARMUP) continue;
    cpu.img += c1 - c0;
    cpu.dir += childCpu() - c1;
    img.push(a);
    dir.push(b);
  }
  const si = summary(img),
    sd = summary(dir);
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  console.log(`root: ${rootfs} (an image of ${info.layers} layers); ${RUNS} runs each, alternated; load ${load}\n`);
  const ci = cpu.img / RUNS,
    cd = cpu.dir / RUNS;
  table([
    ['variant', 'median', 'p90', 'min', 'n', 'cpu'],
    ['nsbox run --rm IMAGE /bin/true', ms(si.median), ms(si.p90), ms(si.min), String(si.n), ms(ci)],
    ['nsbox run --rm DIR /bin/true', ms(sd.median), ms(sd.p90), ms(sd.min), String(sd.n), ms(cd)],
  ]);
  console.log(
    `\nIMAGE - DIR: ${ms(si.median - sd.median)} ms (median), ${ms(si.min - sd.min)} ms (min), ` +
      `${ms(ci - cd)} ms (cpu); IMAGE / DIR: ${(si.median / sd.median).toFixed(2)} (median), ` +
      `${(ci / cd).toFixed(2)} (cpu)`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
