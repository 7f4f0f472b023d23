// Quotas on whatever cgroup hierarchy this host has (hybrid v1 here, pure v2 in ../shared/vm):
// memory (OOM reported), CPU share, a fork bomb under a pids limit, limits visible inside,
// a clean end, usage, bad values, and stale cgroups left by a SIGKILLed CLI.
import { spawn as spawnProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Container, run } from '../../dist/index.js';
import { hierarchies, describeMode } from '../../dist/cgroups/hierarchy.js';
import { CLI, expectNothingLeft, nsbox, nsboxCgroups, ROOTFS, snapshot } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet: [number, number, number] = [0, 2, 2];
let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

const mode = describeMode(hierarchies());
beforeAll(() => {
  console.log(`cgroup tests on kernel ${release()}, hierarchy ${mode}`);
});

describe('memory', () => {
  it('OOM-kills a 100 MiB allocation under --memory 32m and says so', async () => {
    const r = await nsbox(['--memory', '32m', ROOTFS, 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=100M', 'count=1']);
    expect(r.stderr).toBe('nsbox: container killed: out of memory (limit 32 MiB)\n');
    expect(r.code).toBe(137);
  });

  it('reports oomKilled in the library result, and no OOM for a command that fits', async () => {
    const oom = await run({
      rootfs: ROOTFS,
      command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=100M', 'count=1'],
      limits: { memory: '32m' },
    });
    expect(oom.oomKilled).toBe(true);
    expect(oom.signal).toBe('SIGKILL');
    const fits = await run({
      rootfs: ROOTFS,
      command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=8M', 'count=1'],
      limits: { memory: '32m' },
    });
    expect(fits.oomKilled).toBe(false);
    expect(fits.code).toBe(0);
    expect(fits.peakMemoryBytes).toBeGreaterThan(8 * 1024 * 1024);
    expect(fits.peakMemoryBytes).toBeLessThanOrEqual(32 * 1024 * 1024);
  });

  it('reports a process of the container killed while PID 1 lives on', async () => {
    const r = await nsbox([
      '--memory',
      '32m',
      ROOTFS,
      'sh',
      '-c',
      'dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null; echo dd=$?',
    ]);
    expect(r.stdout).toBe('dd=137\n');
    expect(r.stderr).toBe('nsbox: out of memory: a process in the container was killed (limit 32 MiB)\n');
    expect(r.code).toBe(0);
  });
});

describe('cpu', () => {
  /** CPU-seconds per wall second the container's own cgroup charged over `ms`. */
  async function share(c: Container, ms: number): Promise<number> {
    const u0 = c.stats()!;
    const t0 = process.hrtime.bigint();
    await sleep(ms);
    const u1 = c.stats()!;
    const wall = Number(process.hrtime.bigint() - t0) / 1e3;
    return (u1.cpuUserUs + u1.cpuSystemUs - u0.cpuUserUs - u0.cpuSystemUs) / wall;
  }

  it('gives two busy loops under --cpus 0.5 half a CPU between them', async () => {
    const c = new Container({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'while :; do :; done & while :; do :; done'],
      limits: { cpus: 0.5 },
      stdio: quiet,
    });
    try {
      await c.ready;
      await sleep(300);
      // Above 0.6 the quota failed. Below 0.4 the machine may simply be busy (2 cores, other tests):
      // measure once more; the quota is an upper bound, the lower bound only shows the loops ran.
      const shares = [await share(c, 2000)];
      if (shares[0] < 0.4) shares.push(await share(c, 2000));
      console.log(
        `cpu share under --cpus 0.5 (${mode}, ${release()}): ${shares.map((s) => s.toFixed(3)).join(', then ')}`,
      );
      expect(shares[0]).toBeLessThanOrEqual(0.6);
      const last = shares[shares.length - 1];
      expect(last).toBeGreaterThanOrEqual(0.4);
      expect(last).toBeLessThanOrEqual(0.6);
    } finally {
      c.kill('SIGKILL');
      await c.exited;
    }
  });
});

describe('pids', () => {
  it('contains a fork bomb under --pids-limit 32, and the container still ends', async () => {
    const c = new Container({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'f() { while :; do f & done; }; f 2>/dev/null & exec sleep 1000'],
      limits: { pids: 32 },
      stdio: quiet,
    });
    let most = 0;
    try {
      await c.ready;
      const end = Date.now() + 2000;
      while (Date.now() < end) {
        most = Math.max(most, c.stats()!.pids);
        await sleep(20);
      }
    } finally {
      c.kill('SIGKILL');
    }
    const st = await Promise.race([c.exited, sleep(20_000).then(() => null)]);
    expect(st, 'the container did not end').not.toBeNull();
    expect(st!.signal).toBe('SIGKILL');
    expect(most).toBeGreaterThan(16); // the bomb did go off
    expect(most).toBeLessThanOrEqual(32);
  });

  it('applies --pids-limit from the CLI', async () => {
    // busybox sh gives up when a fork fails, and with it the container.
    const r = await nsbox([
      '--pids-limit',
      '4',
      ROOTFS,
      'sh',
      '-c',
      'sleep 1 & sleep 1 & sleep 1 & sleep 1 & sleep 1 & wait; exit 3',
    ]);
    expect(r.stderr).toMatch(/can't fork/);
    expect(r.code).not.toBe(3);
  });
});

describe('inside', () => {
  it('shows the container its own cgroup and limits at /sys/fs/cgroup, read-only', async () => {
    const script = `
      cat /proc/self/cgroup | grep -v name=
      if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
        echo v2; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max
      else
        echo v1; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu*/cpu.cfs_quota_us /sys/fs/cgroup/cpu*/cpu.cfs_period_us /sys/fs/cgroup/pids/pids.max
      fi
      mkdir /sys/fs/cgroup/x 2>&1; echo 1 > /sys/fs/cgroup/pids.max 2>&1 || true`;
    const r = await nsbox(['--memory', '48m', '--cpus', '0.5', '--pids-limit', '20', ROOTFS, 'sh', '-c', script]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const at = lines.findIndex((l) => l === 'v1' || l === 'v2');
    // Every hierarchy the container is in shows it at the root of its cgroup namespace.
    for (const l of lines.slice(0, at)) expect(l).toMatch(/^\d+:[^:]*:\/$/);
    const values = lines.slice(at + 1, at + 5);
    if (lines[at] === 'v2') expect(values).toEqual([String(48 * 1024 * 1024), '0', '50000 100000', '20']);
    else expect(values).toEqual([String(48 * 1024 * 1024), '50000', '100000', '20']);
    expect(lines.slice(at + 5).join('\n')).toMatch(/Read-only file system/);
  });

  it('does the same in a user namespace', async () => {
    const script = `id -u; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max`;
    const r = await nsbox(['--userns', '--memory', '32m', '--pids-limit', '20', ROOTFS, 'sh', '-c', script]);
    expect(r.stdout).toBe(`0\n${32 * 1024 * 1024}\n20\n`);
    const oom = await nsbox([
      '--userns',
      '--memory',
      '32m',
      ROOTFS,
      'dd',
      'if=/dev/zero',
      'of=/dev/null',
      'bs=100M',
      'count=1',
    ]);
    expect(oom.stderr).toBe('nsbox: container killed: out of memory (limit 32 MiB)\n');
    expect(oom.code).toBe(137);
  });

  it('applies --cpuset-cpus, --cpu-shares and --memory-swap', async () => {
    const script = `
      grep Cpus_allowed_list /proc/self/status
      if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
        cat /sys/fs/cgroup/cpuset.cpus /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max
      else
        cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpu*/cpu.shares /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes
      fi`;
    const r = await nsbox([
      '--cpuset-cpus',
      '0',
      '--cpu-shares',
      '512',
      '--memory',
      '32m',
      '--memory-swap',
      '48m',
      ROOTFS,
      'sh',
      '-c',
      script,
    ]);
    expect(r.stderr).toBe('');
    const [allowed, cpus, weight, mem, swap] = r.stdout.trim().split('\n');
    expect(allowed).toMatch(/^Cpus_allowed_list:\s+0$/);
    expect(cpus).toBe('0');
    expect(['512', '20']).toContain(weight); // v1 shares, or v2 weight 1 + (512 - 2) * 9999 / 262142
    expect(mem).toBe(String(32 * 1024 * 1024));
    // v2 limits swap alone, v1 memory plus swap.
    expect([String(16 * 1024 * 1024), String(48 * 1024 * 1024)]).toContain(swap);
  });
});

describe('end', () => {
  it('kills every process left in the cgroup when PID 1 ends, even outside its PID namespace', async () => {
    // Sharing the host's PID namespace, the kernel does not end the rest with PID 1: the cgroup must.
    const r = await run({ rootfs: ROOTFS, command: ['sh', '-c', 'sleep 1000 & echo $!'], namespaces: { pid: false } });
    const pid = Number(r.stdout.trim());
    expect(pid).toBeGreaterThan(1);
    const alive = () => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    for (let i = 0; i < 50 && alive(); i++) await sleep(100);
    expect(alive()).toBe(false);
  });

  it('reads usage while running and in the final result', async () => {
    const c = new Container({
      rootfs: ROOTFS,
      command: [
        'sh',
        '-c',
        'trap "exit 0" TERM; dd if=/dev/zero of=/dev/null bs=20M count=1 2>/dev/null; while :; do :; done',
      ],
      limits: { memory: '64m' },
      stdio: quiet,
    });
    await c.ready;
    await sleep(300);
    const first = c.stats()!;
    await sleep(300);
    const live = c.stats()!;
    c.kill('SIGTERM');
    const st = await c.exited;
    expect(first.pids).toBe(1);
    expect(live.cpuUserUs + live.cpuSystemUs).toBeGreaterThan(first.cpuUserUs + first.cpuSystemUs);
    expect(live.memoryPeakBytes).toBeGreaterThanOrEqual(20 * 1024 * 1024);
    expect(st.code).toBe(0);
    expect(st.oomKilled).toBe(false);
    expect(st.usage.cpuUserUs + st.usage.cpuSystemUs).toBeGreaterThanOrEqual(live.cpuUserUs + live.cpuSystemUs);
    expect(st.usage.cpuUserUs).toBeGreaterThan(50_000);
    expect(st.usage.memoryPeakBytes).toBeGreaterThanOrEqual(20 * 1024 * 1024);
    expect(st.usage.memoryPeakBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(st.usage.pids).toBe(0);
  });

  it('makes a cgroup for accounting with limits: {}, and none without limits', async () => {
    const c = new Container({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'sleep 1 & sleep 1 & wait'],
      limits: {},
      stdio: quiet,
    });
    await c.ready;
    await sleep(300);
    expect(c.stats()!.pids).toBe(3);
    expect(nsboxCgroups().filter((d) => !before.cgroups.includes(d)).length).toBeGreaterThan(0);
    await c.exited;
    const r = await nsbox(['--debug', ROOTFS, 'true']);
    expect(r.stderr).toMatch(/^nsbox: no cgroup: no limits/m);
  });

  it('removes stale cgroups left by a SIGKILLed CLI on the next run', async () => {
    const cli = spawnProcess(
      process.execPath,
      [CLI, '--memory', '32m', ROOTFS, 'sh', '-c', 'echo up; exec sleep 1000'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((r) => cli.stdout!.once('data', r)); // running, past its start
    const mine = nsboxCgroups().filter((c) => c.includes(`.${cli.pid}.`));
    expect(mine.length).toBeGreaterThan(0);
    cli.kill('SIGKILL');
    await new Promise((r) => cli.once('exit', r));
    expect(mine.every((d) => existsSync(d))).toBe(true); // left behind
    // The next nsbox run cleans it (another nsbox starting meanwhile may beat it to it: same result).
    const r = await nsbox([ROOTFS, 'true']);
    expect(r.code).toBe(0);
    expect(mine.filter((d) => existsSync(d))).toEqual([]);
  });
});

describe('bad values', () => {
  const cases: [string[], RegExp][] = [
    [
      ['--memory', '12x'],
      /^nsbox: invalid memory limit: "12x" \(expected a size such as 64m; units b, k, m, g, t\)\n$/,
    ],
    [['--memory', '-1'], /^nsbox: invalid memory limit: "-1"/],
    [['--memory', '100k'], /^nsbox: memory limit too low: 100k \(a container needs at least 6m to start\)\n$/],
    [['--cpus', '0'], /^nsbox: CPU count must be at least 0.01: 0\n$/],
    [['--cpus', '999'], /^nsbox: CPU count 999 is more than the host has \(\d+\)\n$/],
    [['--cpus', 'half'], /^nsbox: invalid CPU count: "half"/],
    [['--pids-limit', '0'], /^nsbox: pids limit must be from 1 to 4194304: 0\n$/],
    [['--cpuset-cpus', '4000'], /^nsbox: CPU 4000 is not online on this host/],
    [['--memory-swap', '1g'], /^nsbox: a memory\+swap limit needs a memory limit too\n$/],
  ];
  for (const [args, message] of cases) {
    it(`rejects ${args.join(' ')} before anything is made`, async () => {
      const r = await nsbox([...args, ROOTFS, 'true']);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(125);
      expect(r.stdout).toBe('');
    });
  }

  it('rejects bad limits in the library with the field named', () => {
    expect(() => new Container({ rootfs: ROOTFS, command: ['true'], limits: { memory: '12x' } })).toThrow(
      expect.objectContaining({ name: 'NsboxError', step: 'limits.memory' }),
    );
  });
});
