// linux.resources applied as runc applies them: each field read back from the cgroup file runc writes
// (v1 or v2, whichever hierarchy has the controller on this host), and each field the host cannot
// apply a one-line error that leaves no container, state or cgroup. Adapts to the host's hierarchy:
// run here (hybrid v1) and in the pure-v2 guest.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, collect, ROOTFS } from '../helpers.js';
import { type Cfg, harness } from './harness.js';

const root = process.getuid?.() === 0;
const h = harness('nsbox-oci-res-');
const { rt, bundle, scratch, state } = h;

beforeAll(() => h.init());
afterAll(async () => {
  for (const id of existsSync(state) ? readdirSync(state) : []) await rt(['delete', '--force', id]);
  rmSync(scratch, { recursive: true, force: true });
});

/** The host's cgroup mounts, read here independently of nsbox: v1 by controller, and cgroup2. */
const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
  .split('\n')
  .map((l) => l.split(' - '))
  .filter((p) => p[1]?.startsWith('cgroup'))
  .map(([a, b]) => ({ dir: a.split(' ')[4], v2: b.startsWith('cgroup2'), opts: b.split(' ')[2].split(',') }));
const v2 = mounts.find((m) => m.v2);
const v2Controllers = v2 ? readFileSync(`${v2.dir}/cgroup.controllers`, 'utf8').trim().split(/\s+/) : [];

/** Where a controller is: its v1 hierarchy, else cgroup2 when it offers it; undefined when nowhere. */
function where(c: string): { dir: string; v2: boolean } | undefined {
  const v1 = mounts.find((m) => !m.v2 && m.opts.includes(c === 'io' ? 'blkio' : c));
  if (v1) return { dir: v1.dir, v2: false };
  return v2 && v2Controllers.includes(c) ? { dir: v2.dir, v2: true } : undefined;
}

/** A whole disk's major:minor (the throttle files take whole devices). */
const disk = readdirSync('/sys/block')
  .filter((d) => !/^(loop|ram|zram|nbd)/.test(d))
  .map((d) => readFileSync(`/sys/block/${d}/dev`, 'utf8').trim())[0];
const hugeSizes = existsSync('/sys/kernel/mm/hugepages') ? readdirSync('/sys/kernel/mm/hugepages') : [];

// Top level: real-time time is handed down from the parent, and the root's is the only one set.
const path = (id: string) => `/nsbox-ocicg-${process.pid}-${id}`;
const read = (c: string, id: string, file: string) => {
  const w = where(c);
  return w ? readFileSync(`${w.dir}${path(id)}/${file}`, 'utf8').trim() : undefined;
};
/** No cgroup directory of the container in any hierarchy, and no state. */
const nothingLeft = (id: string) => {
  expect(existsSync(`${state}/${id}`)).toBe(false);
  for (const m of mounts) expect(existsSync(`${m.dir}${path(id)}`)).toBe(false);
};

async function create(id: string, resources: Cfg) {
  const { dir } = await bundle(id, ['sleep', '1000'], (c: Cfg) => {
    c.linux.cgroupsPath = path(id);
    c.linux.resources = resources;
  });
  return rt(['create', '--bundle', dir, id]);
}

describe.skipIf(!root)('linux.resources', () => {
  it('applies each field the host has a controller for, to the file runc writes', async () => {
    const mem = where('memory');
    const cpu = where('cpu');
    const swapFile = mem?.v2
      ? readdirSync(mem.dir).some((d) => existsSync(`${mem.dir}/${d}/memory.swap.max`))
      : !!mem && existsSync(`${mem.dir}/memory.memsw.limit_in_bytes`);
    const rt1 = !!cpu && !cpu.v2 && existsSync(`${cpu.dir}/cpu.rt_runtime_us`);
    const r: Cfg = {
      memory: { limit: 64 << 20, reservation: 32 << 20, kernel: 1 << 30, kernelTCP: 1 << 30 },
      cpu: { shares: 512, quota: 50000, period: 200000, cpus: '0', mems: '0', burst: 1000 },
      pids: { limit: 50 },
    };
    if (swapFile) r.memory.swap = 128 << 20;
    if (mem && !mem.v2) Object.assign(r.memory, { swappiness: 10, disableOOMKiller: true });
    if (rt1) Object.assign(r.cpu, { realtimePeriod: 1000000, realtimeRuntime: 10000 });
    if (where('io') && disk) {
      const [major, minor] = disk.split(':').map(Number);
      r.blockIO = {
        throttleReadBpsDevice: [{ major, minor, rate: 102400 }],
        throttleWriteIOPSDevice: [{ major, minor, rate: 300 }],
      };
    }
    if (where('hugetlb') && hugeSizes.includes('hugepages-2048kB'))
      r.hugepageLimits = [{ pageSize: '2MB', limit: 4 << 20 }];
    if (mem?.v2) r.unified = { 'memory.high': String(96 << 20) };

    const res = await create('all', r);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const f = (c: string, file: string) => read(c, 'all', file);
    if (mem?.v2) {
      expect(f('memory', 'memory.max')).toBe(String(64 << 20));
      expect(f('memory', 'memory.low')).toBe(String(32 << 20));
      expect(f('memory', 'memory.high')).toBe(String(96 << 20));
      if (swapFile) expect(f('memory', 'memory.swap.max')).toBe(String(64 << 20)); // swap is memory+swap in OCI
    } else {
      expect(f('memory', 'memory.limit_in_bytes')).toBe(String(64 << 20));
      expect(f('memory', 'memory.soft_limit_in_bytes')).toBe(String(32 << 20));
      expect(f('memory', 'memory.swappiness')).toBe('10');
      expect(f('memory', 'memory.oom_control')).toMatch(/^oom_kill_disable 1$/m);
      if (swapFile) expect(f('memory', 'memory.memsw.limit_in_bytes')).toBe(String(128 << 20));
    }
    if (cpu?.v2) {
      expect(f('cpu', 'cpu.max')).toBe('50000 200000');
      expect(f('cpu', 'cpu.weight')).toBe('20'); // runc's conversion of 512 shares
      expect(f('cpu', 'cpu.max.burst')).toBe('1000');
    } else {
      expect(f('cpu', 'cpu.shares')).toBe('512');
      expect(f('cpu', 'cpu.cfs_quota_us')).toBe('50000');
      expect(f('cpu', 'cpu.cfs_period_us')).toBe('200000');
      expect(f('cpu', 'cpu.cfs_burst_us')).toBe('1000');
      if (rt1) {
        expect(f('cpu', 'cpu.rt_period_us')).toBe('1000000');
        expect(f('cpu', 'cpu.rt_runtime_us')).toBe('10000');
      }
    }
    expect(f('cpuset', 'cpuset.cpus')).toBe('0');
    expect(f('cpuset', 'cpuset.mems')).toBe('0');
    expect(f('pids', 'pids.max')).toBe('50');
    if (r.blockIO) {
      if (where('io')?.v2) expect(f('io', 'io.max')).toBe(`${disk} rbps=102400 wbps=max riops=max wiops=300`);
      else {
        expect(f('io', 'blkio.throttle.read_bps_device')).toBe(`${disk} 102400`);
        expect(f('io', 'blkio.throttle.write_iops_device')).toBe(`${disk} 300`);
      }
    }
    if (r.hugepageLimits)
      expect(f('hugetlb', where('hugetlb')?.v2 ? 'hugetlb.2MB.max' : 'hugetlb.2MB.limit_in_bytes')).toBe(
        String(4 << 20),
      );
    // The container runs in them.
    const pid = JSON.parse((await rt(['state', 'all'])).stdout).pid;
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(path('all'));
    expect((await rt(['delete', '--force', 'all'])).code).toBe(0);
    nothingLeft('all');
  });

  it('applies cpu.idle', async () => {
    const res = await create('idle', { cpu: { idle: 1 } });
    expect(res.stderr).toBe('');
    expect(read('cpu', 'idle', 'cpu.idle')).toBe('1');
    expect((await rt(['delete', '--force', 'idle'])).code).toBe(0);
    nothingLeft('idle');
  });

  const mem = where('memory');
  const cpu = where('cpu');
  // [what, resources, fails on this host, the error's words]
  const cases: [string, Cfg, boolean, RegExp][] = [
    ['network.classID', { network: { classID: 0x100001 } }, !where('net_cls'), /network\.classID.*net_cls/],
    [
      'network.priorities',
      { network: { priorities: [{ name: 'eth0', priority: 5 }] } },
      !where('net_prio'),
      /network\.priorities.*net_prio/,
    ],
    ['rdma', { rdma: { mlx4_0: { hcaHandles: 2 } } }, !where('rdma'), /RDMA.*rdma/],
    ['swappiness on v2', { memory: { swappiness: 10 } }, !!mem?.v2, /swappiness: cgroup v2 has no/],
    ['disableOOMKiller on v2', { memory: { disableOOMKiller: true } }, !!mem?.v2, /disableOOMKiller: cgroup v2/],
    [
      'realtimeRuntime without RT group scheduling',
      { cpu: { realtimeRuntime: 10000 } },
      !!cpu && !existsSync(`${cpu.dir}/cpu.rt_runtime_us`),
      /cpu\.realtimeRuntime: this host has no cpu\.rt_runtime_us/,
    ],
    [
      'unified for a controller not on cgroup v2',
      { unified: { 'memory.high': '100000000' } },
      !v2Controllers.includes('memory'),
      /unified|memory controller/,
    ],
    ['unified, not a file', { unified: { 'memory.nope': '1' } }, true, /unified memory\.nope|memory controller/],
    ['unified, a path', { unified: { '../cgroup.procs': '1' } }, true, /not a file of a cgroup controller/],
    ['unified, a core file', { unified: { 'cgroup.procs': '1' } }, true, /not a file of a cgroup controller/],
    ['a huge page size the host lacks', { hugepageLimits: [{ pageSize: '3MB', limit: 1 }] }, true, /3MB/],
  ];
  it.each(cases.filter((c) => c[2]))('refuses %s: one line, nothing left', async (what, resources, _, words) => {
    const id = what.replace(/[^a-z]/gi, '').slice(0, 20);
    const res = await create(id, resources);
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(words);
    nothingLeft(id);
  });

  it('applies blockIO.weight where the host can (bfq, iocost), else refuses it by name', async () => {
    // Weight files come with the I/O scheduler (bfq) or iocost, and only in non-root cgroups.
    const io = where('io');
    const res = await create('weight', { blockIO: { weight: 500 } });
    if (res.code === 0) {
      const files = io?.v2 ? ['io.bfq.weight', 'io.weight'] : ['blkio.bfq.weight', 'blkio.weight'];
      const there = files.filter((x) => existsSync(`${io?.dir}${path('weight')}/${x}`));
      // 500 as is (bfq), or runc's conversion to io.weight's 1-10000 (iocost).
      expect(there.map((x) => read('io', 'weight', x)).join(' ')).toMatch(/\b(500|4950)\b/);
      expect((await rt(['delete', '--force', 'weight'])).code).toBe(0);
    } else expect(res.stderr).toMatch(/blockIO\.weight|block I\/O/);
    nothingLeft('weight');
  });

  it('update sets new limits on a running container, by flags and by -r, and refuses what it cannot', async () => {
    const res = await create('upd', { memory: { limit: 64 << 20 } });
    expect(res.code).toBe(0);
    expect((await rt(['start', 'upd'])).code).toBe(0);
    const u = await rt([
      'update',
      '--memory',
      '128m',
      '--cpu-quota',
      '30000',
      '--cpu-period',
      '100000',
      '--cpuset-cpus',
      '0',
      '--pids-limit',
      '77',
      'upd',
    ]);
    expect(u.stderr).toBe('');
    const f = (c: string, file: string) => read(c, 'upd', file);
    const mem = where('memory');
    expect(f('memory', mem?.v2 ? 'memory.max' : 'memory.limit_in_bytes')).toBe(String(128 << 20));
    expect(f('cpu', where('cpu')?.v2 ? 'cpu.max' : 'cpu.cfs_quota_us')).toMatch(/^30000( 100000)?$/);
    expect(f('cpuset', 'cpuset.cpus')).toBe('0');
    expect(f('pids', 'pids.max')).toBe('77');
    writeFileSync(`${scratch}/res.json`, JSON.stringify({ memory: { reservation: 16 << 20 }, pids: { limit: 66 } }));
    expect((await rt(['update', '-r', `${scratch}/res.json`, 'upd'])).code).toBe(0);
    expect(f('memory', mem?.v2 ? 'memory.low' : 'memory.soft_limit_in_bytes')).toBe(String(16 << 20));
    expect(f('pids', 'pids.max')).toBe('66');
    // A bad value changes nothing and says what.
    const bad = await rt(['update', '--memory', '1m', 'upd']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/memory limit too low/);
    expect(f('memory', mem?.v2 ? 'memory.max' : 'memory.limit_in_bytes')).toBe(String(128 << 20));
    expect((await rt(['update', '--memory', '32m', 'nope'])).stderr).toMatch(/does not exist/);
    expect((await rt(['delete', '--force', 'upd'])).code).toBe(0);
    nothingLeft('upd');
  });

  it("nsbox run's podman-named flags map to the same files", async () => {
    const mem = where('memory');
    const flags = ['--memory', '64m', '--memory-reservation', '32m', '--cpuset-mems', '0'];
    const files = [
      mem?.v2 ? 'memory.low' : 'memory/memory.soft_limit_in_bytes',
      mem?.v2 ? 'cpuset.mems' : 'cpuset/cpuset.mems',
    ];
    if (!mem?.v2) {
      flags.push('--memory-swappiness', '5');
      files.push('memory/memory.swappiness');
    }
    const cat = files.map((f) => `/sys/fs/cgroup/${f}`).join(' ');
    const r = await collect(process.execPath, ['--', CLI, 'run', ...flags, ROOTFS, 'sh', '-c', `cat ${cat}`]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([String(32 << 20), '0', ...(mem?.v2 ? [] : ['5'])]);
  });
});
