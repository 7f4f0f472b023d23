// Many detached containers at once: what each costs the host while it idles, and what grows with their number.
//   node bench/many.js [N=1000] [ROOTFS=.rootfs/busybox]
// Starts N detached `sleep` containers in a state directory of its own, then reports: the RSS of their
// monitors per container (from /proc), the CPU the monitors use over 10 s of idling, the start of the
// first containers (none present) against the last (N-1 present), and `ps`, `ps -a` and
// `stats --no-stream` with one container present against N. Removes them all at the end and checks that
// nothing is left (monitors, container processes, cgroups, mounts, state). Run as root.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const N = Number(process.argv[2] ?? 1000);
const ROOTFS = resolve(process.argv[3] ?? join(here, '..', '.rootfs', 'busybox'));
const CLI = join(here, '..', 'dist', 'run.js');
const STATE = mkdtempSync('/tmp/nsbox-many-');
const env = { ...process.env, NSBOX_STATE_DIR: STATE };
const SAMPLES = 5; // timed starts at each end, and runs of each command
const PARALLEL = 4; // the untimed starts in between

function nsbox(args) {
  return new Promise((res, rej) => {
    const t = process.hrtime.bigint();
    const p = spawn(process.execPath, ['--', CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (code !== 0) rej(new Error(`nsbox ${args.slice(0, 3).join(' ')}: exit ${code}: ${err.trim()}`));
      else res({ out, ms });
    });
  });
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const start = () => nsbox(['run', '-d', ROOTFS, 'sleep', '100000']);

async function timed(args) {
  const ms = [];
  for (let i = 0; i < SAMPLES; i++) ms.push((await nsbox(args)).ms);
  return median(ms);
}

/** Processes named nsbox-monitor that belong to this state directory. */
function monitors() {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8') !== 'nsbox-monitor\n') continue;
      if (readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(`NSBOX_STATE_DIR=${STATE}`))
        out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

const rssKb = (pid) => Number(/^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
// Proportional set size: the binary's pages shared by every monitor count once in all, not once each.
const pssKb = (pid) => Number(/^Pss:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
const cpuTicks = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(v[11]) + Number(v[12]); // utime + stime
};
const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
const cgroupsOf = (ids) => {
  const out = [];
  for (const base of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    let dirs = [];
    try {
      dirs = readdirSync(base);
    } catch {}
    for (const d of [base, ...dirs.map((x) => `${base}/${x}`)]) {
      try {
        out.push(...readdirSync(`${d}/nsbox`).filter((c) => ids.has(c.split('.')[0])));
      } catch {}
    }
  }
  return out;
};

async function main() {
  const t0 = Date.now();
  const first = [];
  for (let i = 0; i < SAMPLES; i++) first.push((await start()).ms);
  const ps1 = await timed(['ps']);
  const psa1 = await timed(['ps', '-a']);
  const stats1 = await timed(['stats', '--no-stream']);
  let next = SAMPLES;
  const bulk = N - 2 * SAMPLES;
  const worker = async () => {
    while (next < SAMPLES + bulk) {
      next++;
      await start();
      if (next % 100 === 0) process.stderr.write(`${next} started (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  const last = [];
  for (let i = 0; i < SAMPLES; i++) last.push((await start()).ms);
  const started = (Date.now() - t0) / 1000;

  const mons = monitors();
  const rss = mons.reduce((s, p) => s + rssKb(p), 0);
  const pss = mons.reduce((s, p) => s + pssKb(p), 0);
  const c0 = mons.reduce((s, p) => s + cpuTicks(p), 0);
  await new Promise((r) => setTimeout(r, 10_000));
  const c1 = mons.reduce((s, p) => s + cpuTicks(p), 0);
  const psN = await timed(['ps']);
  const psaN = await timed(['ps', '-a']);
  const statsN = await timed(['stats', '--no-stream']);
  const count = (await nsbox(['ps', '-q'])).out.trim().split('\n').filter(Boolean).length;

  const ratio = (a, b) => `${(a / b).toFixed(2)}x`;
  const rows = [
    ['containers running', String(count), '', ''],
    ['monitor RSS per container', `${(rss / mons.length / 1024).toFixed(2)} MiB`, `${mons.length} monitors`, ''],
    ['monitor PSS per container', `${(pss / mons.length / 1024).toFixed(2)} MiB`, '(shared pages split)', ''],
    ['monitors CPU over 10 s idle', `${((c1 - c0) * 10).toFixed(0)} ms`, 'all monitors', ''],
    [
      'run -d (median)',
      `${median(first).toFixed(0)} ms`,
      `${median(last).toFixed(0)} ms`,
      ratio(median(last), median(first)),
    ],
    ['ps', `${ps1.toFixed(0)} ms`, `${psN.toFixed(0)} ms`, ratio(psN, ps1)],
    ['ps -a', `${psa1.toFixed(0)} ms`, `${psaN.toFixed(0)} ms`, ratio(psaN, psa1)],
    ['stats --no-stream', `${stats1.toFixed(0)} ms`, `${statsN.toFixed(0)} ms`, ratio(statsN, stats1)],
  ];
  const w = [30, 14, 14, 8];
  const line = (r) => r.map((c, i) => c.padEnd(w[i])).join(' ');
  console.log(
    `N=${N}, ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ` + `all started in ${started.toFixed(0)} s`,
  );
  console.log(line(['', `first ${SAMPLES}`, `last ${SAMPLES}`, 'ratio']));
  console.log(line(['', '(1 present)', `(${N} present)`, '']));
  for (const r of rows) console.log(line(r));
}

/** Remove every container of this run and check that nothing is left. */
async function cleanup(mounts0) {
  const ids = readdirSync(STATE).filter((e) => /^[0-9a-f]{12}$/.test(e));
  for (let i = 0; i < ids.length; i += 100)
    await nsbox(['rm', '-f', ...ids.slice(i, i + 100)]).catch((e) => {
      console.error(e.message);
    });
  const left = { monitors: monitors().length, cgroups: cgroupsOf(new Set(ids)).length, mounts: mounts() - mounts0 };
  const entries = readdirSync(STATE).filter((e) => /^[0-9a-f]{12}$/.test(e)).length;
  const sleeps = sleepers().filter((p) => !sleepers0.has(p));
  console.log(`left after rm -f: ${JSON.stringify({ ...left, entries, 'sleep 100000': sleeps.length })}`);
  if (!left.monitors && !left.cgroups && !entries) rmSync(STATE, { recursive: true, force: true });
}

/** `sleep 100000` processes: ours are those that were not there before the run. */
function sleepers() {
  try {
    return execFileSync('pgrep', ['-f', '^sleep 100000$']).toString().trim().split('\n').filter(Boolean);
  } catch {
    return []; // none: pgrep exits 1
  }
}

const mounts0 = mounts();
const sleepers0 = new Set(sleepers());
try {
  await main();
} finally {
  await cleanup(mounts0);
}
