// nsbox benchmarks (not tests): startup latency and sandboxes per second, beside crun, runc
// and bwrap on the same busybox rootfs. Run as root: `npm run bench` or `node bench/run.js`.
//   --n N          latency samples per variant (default 40), after --warmup W (default 5)
//   --count N      sandboxes per throughput measurement (default 200)
//   --mode M       latency | throughput | all (default all)
//   --only A,B     only variants whose key contains one of these words
//   --nice         run at nice -20 (children too): steadier figures on a busy machine
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { setPriority } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bwrapTrue,
  CRUN_PREP,
  CRUN_WRAP,
  crunVariant,
  inProcess,
  makeOciBundle,
  serve,
  startCrunWorker,
  timeMany,
  timeOnce,
} from './external.js';
import { ms, summary, table } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const ROOTFS = join(ROOT, '.rootfs', 'busybox');
const CLI = join(ROOT, 'dist', 'run.js');

function option(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
}

function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function version(argv) {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0];
  } catch {
    return '?';
  }
}

/** Each variant: run(i) resolves with one sample in ms; many(count, c) with { times, totalMs }. */
async function variants(lib) {
  const v = [];
  const ext = (key, label, argvFor) =>
    v.push({
      key,
      label,
      run: (i) => timeOnce(argvFor(i)),
      many: (count, c) => timeMany(argvFor, count, c),
    });
  const inproc = (key, label, start) => v.push(inProcess(key, label, start));

  ext('node', 'node -e 0 (floor)', () => [process.execPath, '-e', '0']);
  ext('cli', 'nsbox CLI: node dist/run.js ROOTFS /bin/true', () => [process.execPath, CLI, ROOTFS, '/bin/true']);
  inproc('lib', 'library: new Container().exited (no cgroup)', async () => {
    const st = await new lib.Container({ rootfs: ROOTFS, command: ['/bin/true'] }).exited;
    if (st.status !== 0) throw new Error(`library: /bin/true exited ${st.status}`);
  });
  if (lib.spawn) {
    inproc('spawn', "library: spawn({stdio:'ignore'}).exited", async () => {
      // as root: a cgroup for accounting
      const r = await lib.spawn({ rootfs: ROOTFS, command: ['/bin/true'], stdio: 'ignore' }).exited;
      if (r.code !== 0) throw new Error(`spawn: /bin/true: ${r.status}`);
    });
    if (hasLimits()) {
      inproc('limits', 'library: spawn() + memory-limited cgroup', async () => {
        const r = await lib.spawn({
          rootfs: ROOTFS,
          command: ['/bin/true'],
          stdio: 'ignore',
          limits: { memory: 256 * 2 ** 20 },
        }).exited;
        if (r.code !== 0) throw new Error(`spawn+limits: /bin/true: ${r.status}`);
      });
    }
  }
  if (which('bwrap')) {
    ext('bwrap', 'bwrap --unshare-all', () => bwrapTrue(ROOTFS));
  }
  const runc = which('runc');
  const bundle = runc ? makeOciBundle(runc, ROOTFS) : null;
  if (which('crun') && bundle) {
    v.push(crunVariant(startCrunWorker(import.meta.url), bundle, 'nsbench-crun'));
    let j = 0;
    ext('crun-wrapped', 'crun run, each in its own unshare+umount wrapper', () => [
      ...CRUN_WRAP,
      `${CRUN_PREP}exec crun run --bundle ${bundle} nsbench-crunw-${j++}`,
    ]);
    ext('wrapper', '  (the unshare+umount wrapper alone)', () => [...CRUN_WRAP, CRUN_PREP]);
  }
  if (bundle) {
    let j = 0;
    ext('runc', 'runc run', () => ['runc', 'run', '--bundle', bundle, `nsbench-runc-${j++}`]);
  }
  return { list: v, cleanup: () => bundle && rmSync(bundle, { recursive: true, force: true }) };
}

/** What `node dist/run.js` runs: the bundle, or (after a bare tsc) the ES modules. */
function cliKind() {
  try {
    const bundle = statSync(join(ROOT, 'dist', 'bundle', 'main.cjs')).mtimeMs;
    return bundle >= statSync(join(ROOT, 'dist', 'main.js')).mtimeMs
      ? 'bundle dist/bundle/'
      : 'ES modules (bundle older than dist/main.js: run `npm run build`)';
  } catch {
    return 'ES modules (no bundle: run `npm run build`)';
  }
}

function hasLimits() {
  try {
    return /\blimits\?:/.test(readFileSync(join(ROOT, 'dist', 'spec.d.ts'), 'utf8'));
  } catch {
    return false;
  }
}

async function latency(list, n, warmup) {
  for (let i = 0; i < warmup; i++) for (const v of list) await v.run(i);
  const samples = new Map(list.map((v) => [v.key, []]));
  for (let i = 0; i < n; i++) for (const v of list) samples.get(v.key).push(await v.run(i)); // round-robin
  const s = new Map(list.map((v) => [v.key, summary(samples.get(v.key))]));
  console.log(`\nLatency: wall time of one /bin/true, ${n} interleaved samples each (ms)\n`);
  table([
    ['variant', 'median', 'p90', 'min'],
    ...list.map((v) => {
      const x = s.get(v.key);
      return [v.label, ms(x.median), ms(x.p90), ms(x.min)];
    }),
  ]);
  const med = (k) => s.get(k)?.median;
  console.log('');
  if (med('cli') !== undefined) {
    const d = med('cli') - med('node');
    console.log(`CLI - node -e 0:              ${ms(d)} ms  (target <= 5 ms: ${d <= 5 ? 'met' : 'missed'})`);
  }
  for (const k of ['lib', 'spawn', 'limits']) {
    if (med(k) === undefined || med('bwrap') === undefined) continue;
    const r = med(k) / med('bwrap');
    const target = k === 'limits' ? 0.9 : 1;
    console.log(
      `${k.padEnd(6)} / bwrap:               ${r.toFixed(2)}x  (target < ${target}: ${r < target ? 'met' : 'missed'})`,
    );
  }
  if (med('crun-wrapped') !== undefined) {
    console.log(
      `crun wrapper overhead:        ${ms(med('crun-wrapped') - med('crun'))} ms per run` +
        ` (wrapper alone ${ms(med('wrapper'))} ms)`,
    );
  }
}

async function throughput(list, count) {
  const keys = ['lib', 'spawn', 'limits', 'crun', 'bwrap'];
  const chosen = list.filter((v) => keys.includes(v.key));
  const rounds = 4,
    per = Math.ceil(count / rounds);
  const acc = new Map();
  for (let r = 0; r < rounds; r++) {
    for (const c of [1, 2]) {
      for (const v of chosen) {
        const res = await v.many(per, c);
        const a = acc.get(`${v.key}/${c}`) ?? { times: [], totalMs: 0 };
        a.times.push(...res.times);
        a.totalMs += res.totalMs;
        acc.set(`${v.key}/${c}`, a);
      }
    }
  }
  console.log(`\nThroughput: ${per * rounds} x /bin/true from one process, in ${rounds} interleaved rounds\n`);
  const rows = [['variant', 'concurrency', 'per second', 'median ms', 'p90 ms']];
  for (const c of [1, 2]) {
    for (const v of chosen) {
      const a = acc.get(`${v.key}/${c}`);
      const s = summary(a.times);
      rows.push([v.label, String(c), (a.times.length / (a.totalMs / 1000)).toFixed(0), ms(s.median), ms(s.p90)]);
    }
  }
  table(rows);
  console.log(
    '\nTargets (issue 6, memory-limited cgroup): >= 300/s sequential, >= 500/s at concurrency 2, median <= 0.9x bwrap',
  );
}

async function main() {
  if (process.argv.includes('--worker')) return serve();
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (namespaces, crun, runc)');
  if (!existsSync(join(ROOTFS, 'bin', 'busybox')))
    execFileSync('sh', [join(ROOT, 'rootfs-scripts', 'busybox.sh'), ROOTFS], { stdio: 'inherit' });
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm install` (or `npx tsc -p .`) first');
  const lib = await import(join(ROOT, 'dist', 'index.js'));
  const n = Number(option('n', 40)),
    warmup = Number(option('warmup', 5)),
    count = Number(option('count', 200));
  const mode = option('mode', 'all');
  if (process.argv.includes('--nice')) setPriority(-20);
  const only = option('only', '').split(',').filter(Boolean);
  const { list: all, cleanup } = await variants(lib);
  const list = only.length ? all.filter((v) => v.key === 'node' || only.some((w) => v.key.includes(w))) : all;
  console.log(`nsbox bench: Linux ${version(['uname', '-r'])}, ${version(['nproc'])} CPUs, node ${process.version}`);
  console.log(
    `  ${version(['crun', '--version'])}; ${version(['runc', '--version'])}; ${version(['bwrap', '--version'])}`,
  );
  console.log(
    `  CLI: ${cliKind()}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  try {
    if (mode !== 'throughput') await latency(list, n, warmup);
    if (mode !== 'latency') await throughput(list, count);
  } finally {
    for (const v of all) await v.stop?.();
    cleanup();
  }
}

main().catch((e) => {
  console.error(`bench: ${e.stack ?? e}`);
  process.exitCode = 1;
});
