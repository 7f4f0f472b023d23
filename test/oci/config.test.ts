// config.json → ContainerSpec: every field checked, errors naming the JSON path. No root needed.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, MAX_CONFIG, parseConfig } from '../../dist/oci/config.js';
import { defaultSpec } from '../../dist/oci/features.js';

const bundle = mkdtempSync(join(tmpdir(), 'nsbox-oci-config-'));
mkdirSync(`${bundle}/rootfs`);
afterAll(() => rmSync(bundle, { recursive: true, force: true }));

// biome-ignore lint/suspicious/noExplicitAny: the tests edit config.json's JSON freely
type Cfg = Record<string, any>;
const base = (): Cfg => JSON.parse(JSON.stringify(defaultSpec()));
const parse = (c: Cfg, debug?: (l: string) => void) => parseConfig(c, bundle, debug);
const with_ = (f: (c: Cfg) => void) => {
  const c = base();
  f(c);
  return c;
};
const error = (f: (c: Cfg) => void) => {
  try {
    parse(with_(f));
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('no error');
};

describe('the default spec', () => {
  it('maps onto a ContainerSpec', () => {
    const c = parse(base());
    expect(c.spec.rootfs).toBe(`${bundle}/rootfs`);
    expect(c.spec.readOnly).toBe(true);
    expect(c.spec.command).toEqual(['sh']);
    expect(c.spec.env).toMatchObject({ TERM: 'xterm' });
    expect(c.spec.hostname).toBe('nsbox');
    expect(c.spec.namespaces).toEqual({ pid: true, net: true, ipc: true, uts: true, cgroup: true });
    expect(c.spec.userns).toBe(false);
    expect(c.spec.capSets).toEqual({
      bounding: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      effective: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      permitted: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    });
    expect(c.spec.ulimits).toEqual({ nofile: { soft: 1024, hard: 1024 } });
    expect(c.spec.noNewPrivileges).toBe(true);
    expect(c.spec.dieWithParent).toBe(false);
    expect(c.terminal).toBe(true);
    // proc, sysfs, devpts, mqueue, cgroup and /dev are nsbox's own; /dev/shm is a tmpfs mount
    expect(c.mounts.map((m) => m.spec.target)).toEqual(['/dev/shm']);
    expect(c.mounts[0]).toMatchObject({
      spec: { type: 'tmpfs', size: '65536k', mode: 0o1777, exec: false, suid: false },
      noexec: true,
      nosuid: true,
    });
  });

  it('has no seccomp filter when none is given, and says so under --debug', () => {
    const lines: string[] = [];
    expect(parse(base(), (l) => lines.push(l)).spec.seccomp).toBe('unconfined');
    expect(lines.join('\n')).toMatch(/no \$\.linux\.seccomp/);
  });
});

describe('fields', () => {
  it('maps user, umask, rlimits, oomScoreAdj and resources', () => {
    const c = parse(
      with_((c) => {
        c.process.user = { uid: 1000, gid: 100, additionalGids: [10, 20], umask: 0o27 };
        c.process.rlimits = [{ type: 'RLIMIT_NPROC', soft: 10, hard: 2 ** 64 }];
        c.process.oomScoreAdj = 100;
        c.linux.resources = {
          memory: { limit: 64 << 20, swap: 128 << 20 },
          cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0' },
          pids: { limit: 50 },
        };
      }),
    );
    expect(c.spec.user).toBe('1000:100');
    expect(c.spec.groupAdd).toEqual([10, 20]);
    expect(c.umask).toBe(0o27);
    expect(c.spec.ulimits).toEqual({ nproc: { soft: 10, hard: -1 } });
    expect(c.oomScoreAdj).toBe(100);
    expect(c.spec.limits).toEqual({
      memory: 64 << 20,
      memorySwap: 128 << 20,
      cpuShares: 512,
      cpuQuota: 50000,
      cpuPeriod: 100000,
      cpusetCpus: '0',
      pids: 50,
    });
  });

  it('maps every linux.resources field to the cgroup layer; zeros leave defaults; kernel memory is ignored', () => {
    const lines: string[] = [];
    const dev = { major: 8, minor: 0 };
    const c = parse(
      with_((c) => {
        c.linux.resources = {
          memory: { limit: 64 << 20, reservation: 32 << 20, swappiness: 10, disableOOMKiller: true, kernel: 1 },
          cpu: { shares: 0, quota: 0, period: 50000, mems: '0', realtimeRuntime: 1000, realtimePeriod: 0, idle: 1 },
          blockIO: {
            weight: 500,
            leafWeight: 0,
            weightDevice: [{ ...dev, weight: 300 }],
            throttleReadBpsDevice: [{ ...dev, rate: 1024 }],
            throttleWriteIOPSDevice: [],
          },
          hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }],
          network: { classID: 7, priorities: [{ name: 'eth0', priority: 5 }] },
          rdma: { mlx5_0: { hcaHandles: 3 } },
          unified: { 'memory.high': '1000000' },
        };
      }),
      (l) => lines.push(l),
    );
    expect(c.spec.limits).toEqual({
      memory: 64 << 20,
      memoryReservation: 32 << 20,
      memorySwappiness: 10,
      oomKillDisable: true,
      cpuPeriod: 50000,
      cpusetMems: '0',
      cpuRtRuntime: 1000,
      cpuIdle: 1,
      blockIO: {
        weight: 500,
        weightDevice: [{ ...dev, weight: 300 }],
        throttleReadBpsDevice: [{ ...dev, rate: 1024 }],
      },
      hugepages: [{ pageSize: '2MB', limit: 4 << 20 }],
      netClassId: 7,
      netPriorities: [{ name: 'eth0', priority: 5 }],
      rdma: { mlx5_0: { hcaHandles: 3 } },
      unified: { 'memory.high': '1000000' },
    });
    expect(lines.join('\n')).toMatch(/memory\.kernel: deprecated, ignored/);
  });

  it('maps bind mounts with their options, relative to the bundle', () => {
    writeFileSync(`${bundle}/data`, 'x');
    const c = parse(
      with_((c) =>
        c.mounts.push(
          {
            destination: '/data',
            type: 'bind',
            source: 'data',
            options: ['rbind', 'ro', 'nosuid', 'noexec', 'rprivate'],
          },
          { destination: '/etc/hosts', source: '/etc/hosts', options: ['bind'] },
          { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=755'] },
        ),
      ),
    );
    expect(c.mounts.slice(1)).toEqual([
      { spec: { type: 'bind', source: `${bundle}/data`, target: '/data', readOnly: true }, nosuid: true, noexec: true },
      {
        spec: { type: 'bind', source: '/etc/hosts', target: '/etc/hosts', readOnly: false },
        nosuid: false,
        noexec: false,
      },
      {
        spec: {
          type: 'tmpfs',
          target: '/run',
          size: '1m',
          mode: 0o755,
          readOnly: false,
          exec: true,
          suid: true,
          dev: false,
          source: 'tmpfs',
        },
        nosuid: false,
        noexec: false,
      },
    ]);
  });

  it("maps namespaces: new ones, the host's, joined by path, and a user namespace with maps", () => {
    const c = parse(
      with_((c) => {
        c.linux.namespaces = [
          { type: 'mount' },
          { type: 'pid' },
          { type: 'network', path: '/run/netns/x' },
          { type: 'user' },
        ];
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        delete c.hostname;
      }),
    );
    expect(c.spec.namespaces).toEqual({ pid: true, net: false, ipc: false, uts: false, cgroup: false });
    expect(c.joins).toEqual([{ type: 'network', path: '/run/netns/x' }]);
    expect(c.spec.userns).toEqual({
      uidMap: [{ container: 0, host: 100000, size: 65536 }],
      gidMap: [{ container: 0, host: 100000, size: 65536 }],
    });
  });

  it('maps linux.devices to nodes made by number (allowed, as runc allows them), host nodes in a user namespace', () => {
    const devices = [
      { path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 1, gid: 2 },
      { path: '/dev/zero', type: 'c', major: 1, minor: 5 },
      { path: '/dev/x/blk', type: 'b', major: 8, minor: 666 },
      { path: '/dev/fifo', type: 'p' },
    ];
    const c = parse(with_((c) => (c.linux.devices = devices)));
    expect(c.spec.devices).toEqual([
      {
        host: '',
        path: '/dev/mynull',
        access: 'rwm',
        node: { type: 'c', major: 1, minor: 3, mode: 0o640, uid: 1, gid: 2 },
      },
      {
        host: '',
        path: '/dev/x/blk',
        access: 'rwm',
        node: { type: 'b', major: 8, minor: 666, mode: 0o666, uid: 0, gid: 0 },
      },
    ]);
    expect(c.fifos).toEqual([{ path: '/dev/fifo', mode: 0o666, uid: 0, gid: 0 }]);
    const u = parse(
      with_((c) => {
        c.linux.devices = [devices[0]];
        c.linux.namespaces.push({ type: 'user' });
        c.linux.uidMappings = c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      }),
    );
    const rules = parse(
      with_((c) => {
        c.linux.resources.devices = [
          { allow: false, access: 'rwm' },
          { allow: true, type: 'c', major: 10, minor: 200, access: 'rw' },
          { allow: true, type: 'b', major: 8, access: 'r' },
          { allow: false, type: 'c', major: 1, minor: 3, access: 'w' },
          { allow: true, access: 'rwm' },
        ];
      }),
    );
    expect(rules.spec.devices).toEqual([
      { host: '', access: 'rw', node: { type: 'c', major: 10, minor: 200 } },
      { host: '', access: 'r', node: { type: 'b', major: 8, minor: -1 } },
    ]);
    // /dev/mynull is found as /dev/char/1:3 or /dev/null
    expect(u.spec.devices).toEqual([{ host: expect.stringMatching(/^\/dev\//), path: '/dev/mynull', access: 'rwm' }]);
  });

  it('maps systemd cgroupsPath to a path, and keeps a plain one', () => {
    expect(parse(with_((c) => (c.linux.cgroupsPath = 'machine.slice:libpod:abc'))).cgroupsPath).toBe(
      '/machine.slice/libpod-abc.scope',
    );
    expect(parse(with_((c) => (c.linux.cgroupsPath = 'a-b.slice:x:y'))).cgroupsPath).toBe(
      '/a.slice/a-b.slice/x-y.scope',
    );
    expect(parse(with_((c) => (c.linux.cgroupsPath = '/libpod_parent/libpod-abc'))).cgroupsPath).toBe(
      '/libpod_parent/libpod-abc',
    );
  });

  it("passes the OCI seccomp profile on as a profile, and sysctls of the container's namespaces", () => {
    const seccomp = {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] }],
    };
    const c = parse(
      with_((c) => {
        c.linux.seccomp = seccomp;
        c.linux.sysctl = { 'net.ipv4.ping_group_range': '0 0', 'kernel.shmmax': '1000' };
      }),
    );
    expect(c.spec.seccomp).toEqual(seccomp);
    expect(c.sysctl).toEqual([
      ['net.ipv4.ping_group_range', '0 0'],
      ['kernel.shmmax', '1000'],
    ]);
  });
});

describe('hostile or unsupported input: an error naming the JSON path', () => {
  it.each([
    ['$.ociVersion', (c: Cfg) => (c.ociVersion = 2)],
    ['$.process.args', (c: Cfg) => (c.process.args = [])],
    ['$.process.args[1]', (c: Cfg) => (c.process.args = ['sh', 3])],
    ['$.process.env[0]', (c: Cfg) => (c.process.env = ['NOEQUALS'])],
    ['$.process.cwd', (c: Cfg) => (c.process.cwd = 'relative')],
    ['$.process.user.uid', (c: Cfg) => (c.process.user.uid = -1)],
    ['$.process.user.gid', (c: Cfg) => (c.process.user.gid = '0')],
    ['$.process.capabilities.bounding[0]', (c: Cfg) => (c.process.capabilities.bounding = [{}])],
    ['$.process.rlimits[0].type', (c: Cfg) => (c.process.rlimits[0].type = 'RLIMIT_BOGUS')],
    ['$.process.rlimits[0]', (c: Cfg) => (c.process.rlimits[0].soft = 2048)],
    ['$.process.noNewPrivileges', (c: Cfg) => (c.process.noNewPrivileges = 'yes')],
    ['$.root.path', (c: Cfg) => (c.root.path = 'missing')],
    ['$.root', (c: Cfg) => (c.root = 'rootfs')],
    ['$.mounts[7].type', (c: Cfg) => c.mounts.push({ destination: '/x', type: 'nfs', source: 'server:/x' })],
    [
      '$.mounts[7].options',
      (c: Cfg) => c.mounts.push({ destination: '/x', type: 'tmpfs', source: 'x', options: ['uid=0'] }),
    ],
    ['$.mounts[7].destination', (c: Cfg) => c.mounts.push({ destination: 'x', type: 'tmpfs', source: 'x' })],
    [
      '$.mounts[7]',
      (c: Cfg) =>
        c.mounts.push({ destination: '/x', type: 'bind', source: '/tmp', options: ['bind'], uidMappings: [] }),
    ],
    [
      '$.mounts[7].source',
      (c: Cfg) => c.mounts.push({ destination: '/x', type: 'bind', source: '/does/not/exist', options: ['bind'] }),
    ],
    ['$.linux.namespaces', (c: Cfg) => (c.linux.namespaces = [{ type: 'pid' }])],
    ['$.linux.namespaces[6].type', (c: Cfg) => c.linux.namespaces.push({ type: 'bogus' })],
    ['$.linux.namespaces[6].type', (c: Cfg) => c.linux.namespaces.push({ type: 'pid' })],
    ['$.linux.namespaces[6].path', (c: Cfg) => c.linux.namespaces.push({ type: 'time', path: '/proc/1/ns/time' })],
    ['$.linux.namespaces', (c: Cfg) => c.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' })],
    ['$.linux.uidMappings', (c: Cfg) => (c.linux.uidMappings = [{ containerID: 0, hostID: 1, size: 1 }])],
    [
      '$.linux.gidMappings',
      (c: Cfg) => {
        c.linux.namespaces.push({ type: 'user' });
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      },
    ],
    ['$.linux.resources.blockIO.weight', (c: Cfg) => (c.linux.resources.blockIO = { weight: 5 })],
    ['$.linux.resources.unified.memory.high', (c: Cfg) => (c.linux.resources.unified = { 'memory.high': 1 })],
    ['$.linux.resources.memory.swappiness', (c: Cfg) => (c.linux.resources.memory = { swappiness: 101 })],
    ['$.linux.resources.memory.swap', (c: Cfg) => (c.linux.resources.memory = { swap: 1 << 30 })],
    ['$.linux.resources.memory.limit', (c: Cfg) => (c.linux.resources.memory = { limit: '1g' })],
    ['$.linux.sysctl["kernel.panic"]', (c: Cfg) => (c.linux.sysctl = { 'kernel.panic': '1' })],
    [
      '$.linux.sysctl["net.ipv4.ip_forward"]',
      (c: Cfg) => {
        c.linux.namespaces = c.linux.namespaces.filter((n: Cfg) => n.type !== 'network');
        c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
      },
    ],
    [
      '$.linux.seccomp.listenerPath',
      (c: Cfg) => (c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/x' }),
    ],
    [
      '$.linux.devices[0]',
      (c: Cfg) => (c.linux.devices = [{ path: '/opt/nope', type: 'b', major: 4095, minor: 4095 }]),
    ],
    ['$.linux.devices[0].type', (c: Cfg) => (c.linux.devices = [{ path: '/dev/s', type: 's', major: 0, minor: 0 }])],
    ['$.linux.devices[0].path', (c: Cfg) => (c.linux.devices = [{ path: '/opt/p', type: 'p' }])],
    ['$.linux.cgroupsPath', (c: Cfg) => (c.linux.cgroupsPath = '/a/../../b')],
    ['$.linux.intelRdt', (c: Cfg) => (c.linux.intelRdt = {})],
    ['$.linux.netDevices', (c: Cfg) => (c.linux.netDevices = { eth1: {} })],
    ['$.hostname', (c: Cfg) => (c.linux.namespaces = c.linux.namespaces.filter((n: Cfg) => n.type !== 'uts'))],
  ])('%s', (path, f) => {
    const msg = error(f);
    expect(msg.startsWith(`config.json: ${path}`)).toBe(true);
  });

  it('ignores harmless fields with a debug line', () => {
    const lines: string[] = [];
    parse(
      with_((c) => {
        c.process.apparmorProfile = 'p';
        c.process.selinuxLabel = 'l';
        c.linux.mountLabel = 'm';
      }),
      (l) => lines.push(l),
    );
    expect(lines.join('\n')).toMatch(/apparmorProfile: ignored[\s\S]*selinuxLabel: ignored[\s\S]*mountLabel: ignored/);
  });

  it('ignores properties the spec does not define (its extensibility rule), with a debug line', () => {
    const lines: string[] = [];
    const c = parse(
      with_((c) => {
        c.unknown = 'unknown';
        c.process.futureField = 1;
        c.linux.resources.memory = { limit: 1 << 30, futureKnob: true };
      }),
      (l) => lines.push(l),
    );
    expect(c.spec.limits?.memory).toBe(1 << 30);
    expect(lines.join('\n')).toMatch(/\$\.unknown: unknown property, ignored[\s\S]*\$\.process\.futureField/);
  });

  it('refuses a config.json that is not a regular file, too large or not JSON', () => {
    const b = mkdtempSync(join(tmpdir(), 'nsbox-oci-bad-'));
    try {
      expect(() => loadConfig(b)).toThrow(/cannot read .*config\.json/);
      writeFileSync(`${b}/config.json`, '{');
      expect(() => loadConfig(b)).toThrow(/invalid JSON/);
      writeFileSync(`${b}/config.json`, Buffer.alloc(MAX_CONFIG + 1, 0x20));
      expect(() => loadConfig(b)).toThrow(/too large/);
      rmSync(`${b}/config.json`);
      symlinkSync('/etc/passwd', `${b}/config.json`);
      expect(() => loadConfig(b)).toThrow(/cannot read/);
      rmSync(`${b}/config.json`);
      mkdirSync(`${b}/config.json`);
      expect(() => loadConfig(b)).toThrow(/not a regular file|cannot read/);
    } finally {
      rmSync(b, { recursive: true, force: true });
    }
  });
});
