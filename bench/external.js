// Timing of external commands: each run is measured from spawn() to its exit.
import { spawn } from 'node:child_process';
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
