// Pure parsing: sizes, CPU counts and lists, and the cgroup layouts of hybrid, pure v2 and v1 hosts.
import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  onlineCpus,
  parseCpuList,
  parseSize,
  resolveLimits,
  sharesToWeight,
  weightToShares,
} from '../../dist/cgroups/limits.js';
import { parseHierarchies } from '../../dist/cgroups/hierarchy.js';
import { place } from '../../dist/cgroups/cgroup.js';

describe('sizes', () => {
  it('parses bytes and binary units strictly', () => {
    expect(parseSize('64m', 'x')).toBe(64 * 1024 * 1024);
    expect(parseSize('64M', 'x')).toBe(64 * 1024 * 1024);
    expect(parseSize('64MiB', 'x')).toBe(64 * 1024 * 1024);
    expect(parseSize('64mb', 'x')).toBe(64 * 1024 * 1024);
    expect(parseSize('1.5g', 'x')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('4096', 'x')).toBe(4096);
    expect(parseSize('4096b', 'x')).toBe(4096);
    expect(parseSize(8_000_000, 'x')).toBe(8_000_000);
    for (const bad of ['12x', '', 'm', '-5m', ' 64m', '64 m', '1.5', '0.3b', '64mm', '1e6', '0x10']) {
      expect(() => parseSize(bad, 'memory limit'), bad).toThrow(/invalid memory limit/);
    }
    expect(() => parseSize(-1, 'memory limit')).toThrow(/whole number of bytes/);
    expect(() => parseSize(1.5, 'memory limit')).toThrow(/whole number of bytes/);
  });

  it('formats a limit for people', () => {
    expect(formatBytes(32 * 1024 * 1024)).toBe('32 MiB');
    expect(formatBytes(1536 * 1024 * 1024)).toBe('1.5 GiB');
    expect(formatBytes(100)).toBe('100 bytes');
  });
});

describe('limits', () => {
  it('resolves every limit', () => {
    const ncpu = onlineCpus().size;
    expect(resolveLimits({ memory: '64m', cpus: '0.5', cpuShares: 512, cpusetCpus: '0', pids: '32' })).toEqual({
      memoryBytes: 64 * 1024 * 1024,
      swapBytes: 0,
      cpuQuotaUs: 50_000,
      cpuPeriodUs: 100_000,
      cpuShares: 512,
      cpuWeight: sharesToWeight(512),
      cpusetCpus: '0',
      pids: 32,
    });
    expect(resolveLimits({ memory: '64m', memorySwap: '96m' }).swapBytes).toBe(32 * 1024 * 1024);
    expect(resolveLimits({ memory: '64m', memorySwap: -1 }).swapBytes).toBe(-1);
    expect(resolveLimits({ cpus: ncpu }).cpuQuotaUs).toBe(ncpu * 100_000);
    expect(resolveLimits({ cpuWeight: 100 }).cpuShares).toBe(weightToShares(100));
    expect(resolveLimits(undefined)).toEqual({});
  });

  const bad: [string, object, RegExp][] = [
    ['a size with a bad unit', { memory: '12x' }, /^invalid memory limit: "12x" \(expected a size such as 64m/],
    ['a negative size', { memory: '-64m' }, /^invalid memory limit: "-64m"/],
    [
      'a memory limit no process can start in',
      { memory: '1m' },
      /^memory limit too low: 1m \(a container needs at least 6m/,
    ],
    ['swap below memory', { memory: '64m', memorySwap: '32m' }, /below the memory limit/],
    ['swap without memory', { memorySwap: '64m' }, /needs a memory limit too/],
    ['zero CPUs', { cpus: '0' }, /^CPU count must be at least 0.01: 0$/],
    ['negative CPUs', { cpus: '-1' }, /^invalid CPU count: "-1"/],
    ['CPUs that are not a number', { cpus: '1/2' }, /^invalid CPU count: "1\/2"/],
    ['more CPUs than the host has', { cpus: String(onlineCpus().size + 1) }, /is more than the host has/],
    ['shares out of range', { cpuShares: 1 }, /^CPU shares must be from 2 to 262144/],
    ['shares and weight together', { cpuShares: 512, cpuWeight: 50 }, /not both/],
    ['a malformed CPU list', { cpusetCpus: '0-' }, /^invalid CPU list: "0-"/],
    ['a CPU the host lacks', { cpusetCpus: '4000' }, /^CPU 4000 is not online on this host/],
    ['zero pids', { pids: 0 }, /^pids limit must be from 1/],
    ['fractional pids', { pids: '2.5' }, /^invalid pids limit: "2.5"/],
    ['an unknown limit', { memroy: '64m' }, /^unknown limit: memroy$/],
  ];
  for (const [what, l, message] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => resolveLimits(l as never)).toThrow(message);
    });
  }

  it('parses CPU lists', () => {
    expect([...parseCpuList('0-2,5')!]).toEqual([0, 1, 2, 5]);
    expect(parseCpuList('2-1')).toBeUndefined();
    expect(parseCpuList('a')).toBeUndefined();
  });
});

const HYBRID_MOUNTS = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate`;
const HYBRID_SELF = `9:name=systemd:/user.slice/session-1.scope
8:pids:/user.slice
6:freezer:/
4:memory:/user.slice/user-0.slice
3:cpuset:/
1:cpu,cpuacct:/user.slice
0::/user.slice/session-1.scope`;

describe('hierarchies', () => {
  it('takes every controller from v1 on a hybrid host, under our own cgroup', () => {
    const h = parseHierarchies(HYBRID_MOUNTS, HYBRID_SELF);
    expect(h.byController.memory).toMatchObject({ version: 1, base: '/sys/fs/cgroup/memory/user.slice/user-0.slice' });
    expect(h.byController.cpu).toMatchObject({
      version: 1,
      mount: '/sys/fs/cgroup/cpu,cpuacct',
      controllers: ['cpu', 'cpuacct'],
    });
    expect(h.byController.cpuacct).toBe(h.byController.cpu);
    expect(h.byController.freezer?.base).toBe('/sys/fs/cgroup/freezer');
    expect(h.v1.map((x) => x.mount)).not.toContain('/sys/fs/cgroup/systemd');
    const p = place(resolveLimits({ memory: '64m', cpus: 1 }), h);
    expect([...p.values()].flat().sort()).toEqual(['cpu', 'cpuacct', 'freezer', 'memory', 'pids']);
    expect(p.size).toBe(4); // cpu and cpuacct share one hierarchy
  });

  it('takes every controller from v2 on a pure v2 host, beside our own cgroup', () => {
    const h = parseHierarchies(
      '30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate',
      '0::/user.slice/session-1.scope',
    );
    expect(h.v2).toMatchObject({ own: '/sys/fs/cgroup/user.slice/session-1.scope', base: '/sys/fs/cgroup/user.slice' });
    expect(h.v1).toEqual([]);
    const root = parseHierarchies('30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw', '0::/');
    expect(root.v2?.base).toBe('/sys/fs/cgroup');
  });

  it('names the missing controller and the fix', () => {
    const h = parseHierarchies('30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw', '0::/a/b');
    h.v2!.controllers = ['pids'];
    expect(() => place(resolveLimits({ memory: '64m' }), h)).toThrow(
      'cannot limit memory: the memory controller is not in /sys/fs/cgroup/a/cgroup.controllers: enable it with echo +memory > /sys/fs/cgroup/cgroup.subtree_control',
    );
    expect(() => place(resolveLimits({ pids: 5 }), parseHierarchies('', ''))).toThrow(
      'cannot limit processes: no cgroup filesystem is mounted',
    );
  });

  it('follows a mount of a sub-cgroup and skips hierarchies that do not show ours', () => {
    const h = parseHierarchies(
      `1 0 0:1 /ctr /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
2 0 0:2 /other /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids`,
      '4:memory:/ctr/x\n3:pids:/ctr',
    );
    expect(h.byController.memory?.own).toBe('/sys/fs/cgroup/memory/x');
    expect(h.byController.pids).toBeUndefined();
  });
});
