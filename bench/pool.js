// The sandbox pool and run() beside bwrap (and crun, runc), in one interleaved run: latency of one /bin/true
// with its output captured, and throughput at concurrency 1 and 2, all with a memory-limited cgroup.
// Run as root: `node bench/pool.js`.
//   --n N        latency samples per variant (default 60), after --warmup W (default 10)
//   --count N    runs per throughput measurement (default 400)
//   --size N     the pool's size (default 16), also the length of a burst
//   --no-oci     leave out crun and runc
//   --compare DIR  also run() and pool.run() of DIR/dist (another checkout, e.g. a build of main), interleaved
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bwrapTrue,
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
const LIMITS = { memory: 256 * 2 ** 20 };

const option = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const which = (cmd) => {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
};

/** Until a pool holds all its sandboxes again, and a moment for its clean-ups. */
async function settle(pool, size) {
  const sleep = (t) => new Promise((r) => setTimeout(r, t));
  for (let i = 0; i < 500 && pool.idle < size; i++) await sleep(5);
  await sleep(30);
}

/** CPU time so far: this process's (every thread), its reaped children's (clock ticks), the machine's busy. */
function cpuNow() {
  const u = process.cpuUsage();
  const st = readFileSync('/proc/self/stat', 'utf8');
  const f = st
    .slice(st.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const all = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = all[0] + all[1] + all[2] + all[5] + all[6] + all[7]; // user nice system irq softirq steal
  return { ownMs: (u.user + u.system) / 1000, childMs: (f[13] + f[14]) * 10, busyMs: busy * 10 };
}

function cpuSince(a) {
  const b = cpuNow();
  return { ownMs: b.ownMs - a.ownMs, childMs: b.childMs - a.childMs, busyMs: b.busyMs - a.busyMs };
}

/** In-process variants: start() resolves once one /bin/true has run. */
const inproc = inProcess;

const ext = (key, label, argvFor) => ({
  key,
  label,
  run: (i) => timeOnce(argvFor(i)),
  many: (count, c) => timeMany(argvFor, count, c),
});

async function main() {
  if (process.argv.includes('--worker')) return serve();
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root');
  if (!existsSync(join(ROOTFS, 'bin', 'busybox')))
    execFileSync('sh', [join(ROOT, 'rootfs-scripts', 'busybox.sh'), ROOTFS], { stdio: 'inherit' });
  const lib = await import(join(ROOT, 'dist', 'index.js'));
  const n = option('n', 60),
    warmup = option('warmup', 10),
    count = option('count', 400),
    size = option('size', 16);
  const pool = new lib.SandboxPool({ rootfs: ROOTFS, size, limits: LIMITS });
  const at = process.argv.indexOf('--compare');
  const compareDir = at > 0 ? resolve(process.argv[at + 1]) : null;
  const old = compareDir ? await import(join(compareDir, 'dist', 'index.js')) : null;
  const oldPool = old ? new old.SandboxPool({ rootfs: ROOTFS, size, limits: LIMITS }) : null;
  const check = (r, what) => {
    if (r.code !== 0) throw new Error(`${what}: /bin/true: ${r.status}`);
  };
  const list = [
    ext('bwrap', 'bwrap --unshare-all ... /bin/true', () => bwrapTrue(ROOTFS)),
    inproc('run', 'run() + memory limit, output captured', async () =>
      check(await lib.run({ rootfs: ROOTFS, command: ['/bin/true'], limits: LIMITS }), 'run'),
    ),
    {
      ...inproc('pool', `pool.run() (size ${size}) + memory limit, output captured`, async () =>
        check(await pool.run(['/bin/true']), 'pool.run'),
      ),
      settle: () => settle(pool, size),
    },
  ];
  if (old) {
    list.push(
      inproc('run-compare', 'compare: run() + memory limit', async () =>
        check(await old.run({ rootfs: ROOTFS, command: ['/bin/true'], limits: LIMITS }), 'compare run'),
      ),
      {
        ...inproc('pool-compare', `compare: pool.run() (size ${size})`, async () =>
          check(await oldPool.run(['/bin/true']), 'compare pool.run'),
        ),
        settle: () => settle(oldPool, size),
      },
    );
  }
  const runc = !process.argv.includes('--no-oci') && which('runc');
  const bundle = runc ? makeOciBundle(runc, ROOTFS, { memory: { limit: LIMITS.memory } }) : null;
  let worker = null;
  if (bundle && which('crun')) {
    worker = startCrunWorker(import.meta.url);
    list.push(crunVariant(worker, bundle, 'nsbench-pool-crun'));
  }
  if (bundle) {
    let j = 0;
    list.push(ext('runc', 'runc run', () => ['runc', 'run', '--bundle', bundle, `nsbench-pool-runc-${j++}`]));
  }
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`nsbox pool bench: ${execFileSync('nproc').toString().trim()} CPUs, node ${process.version}`);
  console.log(`  load average at the start: ${load()}`);
  try {
    // Latency: round-robin, one at a time.
    for (let i = 0; i < warmup; i++) for (const v of list) await v.run(i);
    const samples = new Map(list.map((v) => [v.key, []]));
    for (let i = 0; i < n; i++) for (const v of list) samples.get(v.key).push(await v.run(i));
    const lat = new Map(list.map((v) => [v.key, summary(samples.get(v.key))]));
    const med = (k) => lat.get(k).median;
    console.log(`\nLatency of one /bin/true, ${n} interleaved samples each (ms)\n`);
    table([
      ['variant', 'median', 'p90', 'min', 'x bwrap'],
      ...list.map((v) => {
        const x = lat.get(v.key);
        return [v.label, ms(x.median), ms(x.p90), ms(x.min), (x.median / med('bwrap')).toFixed(2)];
      }),
    ]);

    // Throughput: interleaved rounds at concurrency 1 and 2, with the CPU time each round costs.
    const rounds = 4,
      per = Math.ceil(count / rounds);
    const acc = new Map();
    for (let r = 0; r < rounds; r++) {
      for (const c of [1, 2]) {
        for (const v of list) {
          // Each pool full and quiet first; a pool's round is charged for the refill after it (its making).
          for (const x of list) await x.settle?.();
          const cpu0 = cpuNow();
          const res = await v.many(per, c);
          await v.settle?.();
          const used = cpuSince(cpu0);
          const a = acc.get(`${v.key}/${c}`) ?? { times: [], totalMs: 0, ownMs: 0, childMs: 0, busyMs: 0 };
          a.times.push(...res.times);
          a.totalMs += res.totalMs;
          a.ownMs += used.ownMs;
          a.childMs += used.childMs;
          a.busyMs += used.busyMs;
          acc.set(`${v.key}/${c}`, a);
        }
      }
    }
    const rate = (k, c) => {
      const a = acc.get(`${k}/${c}`);
      return a.times.length / (a.totalMs / 1000);
    };
    console.log(`\nThroughput: ${per * rounds} x /bin/true, in ${rounds} interleaved rounds`);
    console.log(
      '(CPU ms per sandbox: this process, all threads; its reaped children (the sandboxes, bwrap); and the\n' +
        " whole machine's busy time, kernel workers included, and other sessions' work too)\n",
    );
    const rows = [['variant', 'concurrency', 'per second', 'median ms', 'x bwrap /s', 'own', 'children', 'busy']];
    for (const c of [1, 2]) {
      for (const v of list) {
        const a = acc.get(`${v.key}/${c}`);
        const s = summary(a.times);
        const each = (x) => (v.key === 'crun' && x !== a.busyMs ? '-' : ms(x / a.times.length));
        rows.push([
          v.label,
          String(c),
          rate(v.key, c).toFixed(0),
          ms(s.median),
          (rate(v.key, c) / rate('bwrap', c)).toFixed(2),
          each(a.ownMs),
          each(a.childMs),
          each(a.busyMs),
        ]);
      }
    }
    table(rows);

    // A burst from a full pool: `size` runs at concurrency 2 with every sandbox held beforehand (the refill
    // waits until the burst is over), then a pause for the pool to fill again.
    const full = async () => {
      for (let i = 0; i < 500 && pool.idle < size; i++) await new Promise((r) => setTimeout(r, 10));
    };
    const burst = { times: [], totalMs: 0 };
    for (let r = 0; r < Math.max(4, Math.ceil(count / size / 2)); r++) {
      await full();
      const res = await list.find((v) => v.key === 'pool').many(size, 2);
      burst.times.push(...res.times);
      burst.totalMs += res.totalMs;
    }
    const burstRate = burst.times.length / (burst.totalMs / 1000);
    console.log(
      `\nBurst: ${size} x pool.run() at concurrency 2 from a full pool, ${burst.times.length} runs: ` +
        `${burstRate.toFixed(0)}/s, median ${ms(summary(burst.times).median)} ms`,
    );
    const verdict = (ok) => (ok ? 'met' : 'missed');
    const pl = med('pool') / med('bwrap'),
      rl = med('run') / med('bwrap');
    console.log('\nTargets (issue 16)');
    console.log(`  pool.run() latency / bwrap    ${pl.toFixed(2)}x   (<= 0.25: ${verdict(pl <= 0.25)})`);
    const pr = rate('pool', 2);
    console.log(`  pool.run() at concurrency 2   ${pr.toFixed(0)}/s steady (>= 1500: ${verdict(pr >= 1500)})`);
    console.log(`  pool.run() burst              ${burstRate.toFixed(0)}/s (>= 1500: ${verdict(burstRate >= 1500)})`);
    console.log(`  run() latency / bwrap         ${rl.toFixed(2)}x   (<= 0.7: ${verdict(rl <= 0.7)})`);
    console.log(
      `  run() at concurrency 2        ${rate('run', 2).toFixed(0)}/s (>= 700: ${verdict(rate('run', 2) >= 700)})`,
    );
    console.log(`  load average at the end: ${load()}`);
  } finally {
    await pool.close();
    await oldPool?.close();
    if (worker) await worker.stop();
    if (bundle) rmSync(bundle, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench: ${e.stack ?? e}`);
  process.exitCode = 1;
});
