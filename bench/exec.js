// Latency of running /bin/true in an already running container, in one interleaved run:
//   nsbox exec NAME /bin/true        (the CLI: node start, state lookup, setns, fork, exec)
//   nsenter -a -t PID /bin/true      (the floor: a C program that only joins namespaces)
//   runc exec ID /bin/true
//   crun exec ID /bin/true           (inside a prepared mount namespace: crun 1.8.1 refuses this
//                                     hybrid cgroup host while /sys/fs/cgroup/unified is mounted)
// Run as root: `node bench/exec.js [--n 40] [--warmup 5]`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, startCrunWorker, timeOnce } from './external.js';
import { ms, summary, table } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const ROOTFS = join(ROOT, '.rootfs', 'busybox');
const CLI = join(ROOT, 'dist', 'run.js');

const option = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};

const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;

function bundle() {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-bench-exec-'));
  execFileSync('runc', ['spec'], { cwd: dir });
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  c.root = { path: ROOTFS, readonly: false };
  c.process.terminal = false;
  c.process.args = ['sleep', '100000'];
  c.linux.namespaces = ['pid', 'mount', 'uts', 'ipc', 'network', 'cgroup'].map((type) => ({ type }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c, null, 1));
  return dir;
}

async function main() {
  if (process.argv.includes('--worker')) return serve();
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root');
  if (!existsSync(join(ROOTFS, 'bin', 'busybox')))
    throw new Error(`no rootfs at ${ROOTFS}: run rootfs-scripts/busybox.sh ${ROOTFS}`);
  const n = option('n', 40),
    warmup = option('warmup', 5);
  const state = mkdtempSync(join(tmpdir(), 'nsbox-bench-state-'));
  process.env.NSBOX_STATE_DIR = state; // a state directory of the bench's own, for every nsbox call
  const env = process.env;
  const name = `bench-${process.pid}`;
  const cleanups = [];
  const variants = [];
  try {
    execFileSync(process.execPath, [CLI, 'run', '-d', '--name', name, ROOTFS, 'sleep', '100000'], { env });
    cleanups.push(() => spawnSync(process.execPath, [CLI, 'rm', '-f', name], { env }));
    const pid = JSON.parse(execFileSync(process.execPath, [CLI, 'inspect', name], { env, encoding: 'utf8' }))[0].pid;
    const nsboxExec = [process.execPath, CLI, 'exec', name, '/bin/true'];
    variants.push({ key: 'nsbox', label: 'nsbox exec NAME /bin/true', run: () => timeOnce(nsboxExec) });
    variants.push({
      key: 'nsenter',
      label: 'nsenter -a -t PID /bin/true',
      run: () => timeOnce(['nsenter', '-a', '-t', String(pid), '/bin/true']),
    });
    variants.push({
      key: 'node',
      label: '(node -e 0: the floor of any node CLI)',
      run: () => timeOnce([process.execPath, '-e', '0']),
    });
    const b = which('runc') || which('crun') ? bundle() : null;
    if (b) cleanups.push(() => rmSync(b, { recursive: true, force: true }));
    if (which('runc')) {
      const rroot = mkdtempSync(join(tmpdir(), 'nsbox-bench-runc-'));
      const id = `nsbench-exec-runc-${process.pid}`;
      execFileSync('runc', ['--root', rroot, 'run', '-d', '--bundle', b, id], { stdio: 'ignore' });
      cleanups.push(() => {
        spawnSync('runc', ['--root', rroot, 'delete', '-f', id]);
        rmSync(rroot, { recursive: true, force: true });
      });
      variants.push({
        key: 'runc',
        label: 'runc exec ID /bin/true',
        run: () => timeOnce(['runc', '--root', rroot, 'exec', id, '/bin/true']),
      });
    }
    if (which('crun')) {
      const worker = startCrunWorker(import.meta.url);
      const id = `nsbench-exec-crun-${process.pid}`;
      await worker.request({ argv: ['crun', 'run', '--detach', '--bundle', b, id] });
      cleanups.push(async () => {
        await worker.request({ argv: ['crun', 'delete', '-f', id] }).catch(() => {});
        await worker.stop();
      });
      variants.push({
        key: 'crun',
        label: 'crun exec ID /bin/true (prepared mount ns)',
        run: async () => (await worker.request({ argv: ['crun', 'exec', id, '/bin/true'] })).times[0],
      });
    }
    for (let i = 0; i < warmup; i++) for (const v of variants) await v.run();
    const samples = new Map(variants.map((v) => [v.key, []]));
    for (let i = 0; i < n; i++) for (const v of variants) samples.get(v.key).push(await v.run()); // round-robin
    const s = new Map(variants.map((v) => [v.key, summary(samples.get(v.key))]));
    console.log(
      `\nexec latency: wall time of /bin/true in a running busybox container, ${n} interleaved samples each (ms)\n`,
    );
    table([
      ['variant', 'median', 'p90', 'min'],
      ...variants.map((v) => {
        const x = s.get(v.key);
        return [v.label, ms(x.median), ms(x.p90), ms(x.min)];
      }),
    ]);
    const med = (k) => s.get(k)?.median;
    console.log(`\nnsbox exec - node -e 0: ${ms(med('nsbox') - med('node'))} ms (what nsbox adds to starting node)`);
  } finally {
    for (const c of cleanups.reverse()) await c();
    rmSync(state, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
