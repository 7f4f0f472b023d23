// Image benchmarks (not tests), as root: a multi-layer image of about 100 MB made from a Debian
// minbase root, pushed to docker-registry on loopback; then, from that registry,
//   pull+unpack: nsbox pull  vs  skopeo copy + umoci unpack  vs  podman pull
//   run:         nsbox run --rm IMAGE /bin/true  vs  nsbox run --rm DIR /bin/true  vs  podman run --rm
//   node bench/images.js [--rootfs DIR] [--n N (pulls, default 3)] [--runs N (default 20)]
// DIR defaults to .rootfs/debian (made by rootfs-scripts/debian.sh when missing: needs Debian's mirror).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
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
const rootfs = resolve(opt('rootfs', join(ROOT, '.rootfs', 'debian')));
const N = Number(opt('n', 3)),
  RUNS = Number(opt('runs', 20));
const work = mkdtempSync('/tmp/nsbox-bench-images-');
const sh = (cmd, args, o = {}) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30, ...o });

if (!existsSync(`${rootfs}/usr/bin/true`))
  sh('sh', [join(ROOT, 'rootfs-scripts', 'debian.sh'), rootfs], { stdio: 'inherit' });

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const port = await freePort();
mkdirSync(`${work}/registry`);
writeFileSync(
  `${work}/registry/config.yml`,
  `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/registry/data\n` +
    `http:\n  addr: 127.0.0.1:${port}\n`,
);
const registry = spawn('/usr/bin/docker-registry', ['serve', `${work}/registry/config.yml`], { stdio: 'ignore' });
const stopRegistry = () => {
  try {
    process.kill(registry.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
};
process.on('exit', stopRegistry);
try {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = layout(`${work}/oci`, rootfs);
  const ref = `127.0.0.1:${port}/library/deb:1`;
  sh('skopeo', ['--insecure-policy', 'copy', '--dest-tls-verify=false', `oci:${work}/oci:deb`, `docker://${ref}`]);
  console.log(
    `image: ${info.layers} layers, ${(info.compressed / 1e6).toFixed(1)} MB gzipped, ` +
      `${(info.unpacked / 1e6).toFixed(1)} MB unpacked; ` +
      `registry on 127.0.0.1:${port}; ${N} pulls and ${RUNS} runs each, medians (ms); load ${loadavg()[0]}\n`,
  );

  const podmanArgs = (d) => [
    'podman',
    '--root',
    `${d}/root`,
    '--runroot',
    `${d}/run`,
    '--storage-driver',
    'overlay',
    '--cgroup-manager',
    'cgroupfs',
    '--runtime',
    'runc',
  ];
  const rows = [['variant', 'median', 'p90', 'min', 'n', 'cpu']];
  const results = {};
  const cpu = {};
  const measure = async (name, make, n) => {
    const samples = [];
    for (let i = 0; i < n; i++) {
      const { argv, before, after } = make(i);
      before?.();
      samples.push(await timeOnce(argv));
      after?.();
    }
    const s = summary(samples);
    results[name] = s.median;
    rows.push([name, ms(s.median), ms(s.p90), ms(s.min), String(s.n), '']);
  };
  const fresh = (name) => {
    const d = `${work}/${name}`;
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    return d;
  };
  /** User + system CPU ms of the children waited for so far (/proc/self/stat cutime, cstime). */
  const childCpu = () => {
    const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return (Number(f[13]) + Number(f[14])) * 10; // clock ticks of 10 ms
  };

  // Pull + unpack, each into an empty store; the three tools alternated, so that a busy moment
  // of the machine weighs on each alike. CPU time (user + system) is steadier than wall time.
  const pulls = {
    'nsbox pull': (i) => {
      const d = fresh(`nsbox-${i}`);
      process.env.NSBOX_STORAGE_DIR = d;
      return {
        argv: [process.execPath, CLI, 'pull', '-q', ref],
        after: () => i < N - 1 && rmSync(d, { recursive: true, force: true }),
      };
    },
    'skopeo copy + umoci unpack': (i) => {
      const d = fresh(`skopeo-${i}`);
      return {
        argv: [
          'sh',
          '-c',
          `skopeo --insecure-policy copy -q --src-tls-verify=false docker://${ref} oci:${d}/oci:deb && ` +
            `umoci unpack --image ${d}/oci:deb ${d}/bundle`,
        ],
        after: () => rmSync(d, { recursive: true, force: true }),
      };
    },
    'podman pull': (i) => {
      const d = fresh(`podman-${i}`);
      return {
        argv: [...podmanArgs(d), 'pull', '-q', '--tls-verify=false', ref],
        after: () => {
          try {
            sh(podmanArgs(d)[0], [...podmanArgs(d).slice(1), 'system', 'reset', '-f']);
          } catch {
            /* best effort */
          }
          rmSync(d, { recursive: true, force: true });
        },
      };
    },
  };
  const wall = Object.fromEntries(Object.keys(pulls).map((k) => [k, []]));
  const cpus = Object.fromEntries(Object.keys(pulls).map((k) => [k, []]));
  for (let i = 0; i < N; i++) {
    for (const [name, make] of Object.entries(pulls)) {
      const { argv, after } = make(i);
      const c0 = childCpu();
      wall[name].push(await timeOnce(argv));
      cpus[name].push(childCpu() - c0);
      after?.();
    }
  }
  for (const name of Object.keys(pulls)) {
    const s = summary(wall[name]);
    results[name] = s.median;
    cpu[name] = summary(cpus[name]).median;
    rows.push([name, ms(s.median), ms(s.p90), ms(s.min), String(s.n), ms(cpu[name])]);
  }

  // Runs: the nsbox store of the last pull; a podman store with the image pulled once.
  process.env.NSBOX_STORAGE_DIR = `${work}/nsbox-${N - 1}`;
  process.env.NSBOX_STATE_DIR = fresh('state');
  // Alternated, so that a busy moment of the machine weighs on both alike.
  const img = [],
    dir = [];
  for (let i = 0; i < RUNS; i++) {
    img.push(await timeOnce([process.execPath, CLI, 'run', '--rm', ref, '/bin/true']));
    dir.push(await timeOnce([process.execPath, CLI, 'run', '--rm', rootfs, '/bin/true']));
  }
  for (const [name, samples] of [
    ['nsbox run --rm IMAGE /bin/true', img],
    ['nsbox run --rm DIR /bin/true', dir],
  ]) {
    const s = summary(samples);
    results[name] = s.median;
    rows.push([name, ms(s.median), ms(s.p90), ms(s.min), String(s.n), '']);
  }
  const pd = fresh('podman-run');
  sh(podmanArgs(pd)[0], [...podmanArgs(pd).slice(1), 'pull', '-q', '--tls-verify=false', ref]);
  await measure(
    'podman run --rm IMAGE /bin/true',
    () => ({
      argv: [
        ...podmanArgs(pd),
        'run',
        '--rm',
        '--net=none',
        '--ulimit',
        'nofile=1024:20000',
        '--ulimit',
        'nproc=1024:1024',
        ref,
        '/bin/true',
      ],
    }),
    RUNS,
  );
  try {
    sh(podmanArgs(pd)[0], [...podmanArgs(pd).slice(1), 'system', 'reset', '-f']);
  } catch {
    /* best effort */
  }

  table(rows);
  const r = (a, b, t = results) => (t[a] / t[b]).toFixed(2);
  console.log(
    `\nnsbox pull / (skopeo + umoci): ${r('nsbox pull', 'skopeo copy + umoci unpack')} wall, ` +
      `${r('nsbox pull', 'skopeo copy + umoci unpack', cpu)} cpu; ` +
      `nsbox pull / podman pull: ${r('nsbox pull', 'podman pull')} wall, ${r('nsbox pull', 'podman pull', cpu)} cpu`,
  );
  console.log(
    `run from IMAGE - run from DIR: ` +
      `${ms(results['nsbox run --rm IMAGE /bin/true'] - results['nsbox run --rm DIR /bin/true'])} ms ` +
      `(IMAGE / DIR: ${r('nsbox run --rm IMAGE /bin/true', 'nsbox run --rm DIR /bin/true')}); ` +
      `nsbox / podman run: ${r('nsbox run --rm IMAGE /bin/true', 'podman run --rm IMAGE /bin/true')}`,
  );
} finally {
  stopRegistry();
  rmSync(work, { recursive: true, force: true });
}
