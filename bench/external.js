// Timing of external commands: each run is measured from spawn() to its exit.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** bwrap's argv for `/bin/true` in all new namespaces on ROOTFS, the reference the benches compare with. */
export const bwrapTrue = (rootfs) => [
  'bwrap',
  '--unshare-all',
  '--bind',
  rootfs,
  '/',
  '--proc',
  '/proc',
  '--dev',
  '/dev',
  '/bin/true',
];

/** Runs argv once (in `env`, default this one's); resolves with the wall time in ms. Fails on a non-zero exit. */
export function timeOnce(argv, env = process.env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      const t = performance.now() - t0;
      if (code === 0) resolve(t);
      else reject(new Error(`${argv.join(' ')}: exit ${code ?? signal}: ${err.trim()}`));
    });
  });
}

/**
 * Runs `count` invocations, `concurrency` at a time. argvFor(i) gives the i-th command line.
 * Resolves with each run's time and the total wall time.
 */
export async function timeMany(argvFor, count, concurrency = 1) {
  const times = [];
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < count) times.push(await timeOnce(argvFor(next++)));
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { times, totalMs: performance.now() - t0 };
}

/**
 * Worker mode: read one JSON request a line ({ argv, count, concurrency }; "{i}" in argv is
 * replaced by a run counter), answer one JSON line. Used to run crun inside a prepared mount
 * namespace so the wrapper that prepares it is not part of each measurement.
 */
export async function serve() {
  let serial = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    const { argv, count = 1, concurrency = 1 } = JSON.parse(line);
    try {
      const r = await timeMany(
        () => {
          const i = serial++;
          return argv.map((a) => a.replace('{i}', String(i)));
        },
        count,
        concurrency,
      );
      process.stdout.write(`${JSON.stringify(r)}\n`);
    } catch (e) {
      process.stdout.write(`${JSON.stringify({ error: String(e.message ?? e) })}\n`);
    }
  }
}

/** A worker process started through a wrapper command; request() sends one request. */
export function startWorker(wrapper) {
  const p = spawn(wrapper[0], wrapper.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: p.stdout })[Symbol.asyncIterator]();
  return {
    async request(req) {
      p.stdin.write(`${JSON.stringify(req)}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error('bench worker ended');
      const r = JSON.parse(value);
      if (r.error) throw new Error(r.error);
      return r;
    },
    stop() {
      p.stdin.end();
      return new Promise((resolve) => p.on('exit', resolve));
    },
  };
}

/** A variant run in this process: start() resolves once one command has run. run() times one; many() runs
 *  `count` with `c` at a time, as timeMany does for a command line. */
export function inProcess(key, label, start) {
  return {
    key,
    label,
    async run() {
      const t0 = performance.now();
      await start();
      return performance.now() - t0;
    },
    async many(count, c) {
      const times = [];
      let next = 0;
      const t0 = performance.now();
      const lane = async () => {
        while (next++ < count) {
          const t = performance.now();
          await start();
          times.push(performance.now() - t);
        }
      };
      await Promise.all(Array.from({ length: c }, lane));
      return { times, totalMs: performance.now() - t0 };
    },
  };
}

// crun 1.8.1 refuses a hybrid cgroup host; inside a private mount namespace without the cgroup2 mount at
// /sys/fs/cgroup/unified it uses the v1 hierarchies.
export const CRUN_PREP = 'umount /sys/fs/cgroup/unified 2>/dev/null; ';
export const CRUN_WRAP = ['unshare', '-m', '--propagation', 'private', 'sh', '-c'];

/** The bench script at `scriptUrl` as a worker (its --worker mode: serve()) in a mount namespace made for crun. */
export const startCrunWorker = (scriptUrl) =>
  startWorker([...CRUN_WRAP, `${CRUN_PREP}exec "$0" "$@"`, process.execPath, fileURLToPath(scriptUrl), '--worker']);

/** A variant timing `crun run` of `bundle` in that worker: one run, or `count` with `c` at a time. */
export function crunVariant(worker, bundle, prefix) {
  const argv = ['crun', 'run', '--bundle', bundle, `${prefix}-{i}`];
  return {
    key: 'crun',
    label: 'crun run (in a prepared mount ns)',
    run: async () => (await worker.request({ argv })).times[0],
    many: (count, c) => worker.request({ argv, count, concurrency: c }),
    stop: () => worker.stop(),
  };
}

/** An OCI bundle for crun/runc: `runc spec` defaults, `rootfs`, /bin/true, the namespaces of bwrap's
 *  --unshare-all but user, and `resources` (e.g. a memory limit). */
export function makeOciBundle(runc, rootfs, resources = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-'));
  execFileSync(runc, ['spec'], { cwd: dir });
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  c.root = { path: rootfs, readonly: false };
  c.process.terminal = false;
  c.process.args = ['/bin/true'];
  c.linux.namespaces = ['pid', 'mount', 'uts', 'ipc', 'network', 'cgroup'].map((type) => ({ type }));
  c.linux.resources = { ...c.linux.resources, ...resources };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c, null, 1));
  return dir;
}
