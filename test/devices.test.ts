// Devices: a container may open only the default devices (and those given with --device), even
// though it may mknod (CAP_MKNOD is in the default set). The host's "disk" is a loop device over a
// file holding a known secret, so that a read that got through would show.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deviceProgram } from '../src/devices/bpf.js';
import { DEFAULT_DEVICE_RULES } from '../src/devices/spec.js';
import { native } from '../src/native.js';
import { expectNothingLeft, nsbox, snapshot } from './helpers.js';
import { probeRootfs, type ProbeRoot } from './tools/probe.js';
import { hostDisk, type HostDisk } from './tools/disk.js';

const SECRET = 'SECRET-DISK-CONTENT';
const secretHex = Buffer.from(SECRET).toString('hex');

let p: ProbeRoot;
let disk: HostDisk;
let dir: string;
let loop: string;
let major: number, minor: number;
let before: ReturnType<typeof snapshot>;

beforeAll(() => {
  p = probeRootfs();
  disk = hostDisk(SECRET);
  ({ dir, loop, major, minor } = disk);
});
afterAll(() => {
  disk?.cleanup();
  p?.cleanup();
});
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

const run = (args: string[], script: string) => nsbox([...args, p.root, 'sh', '-c', script]);

describe('devices', () => {
  it('the host can read its disk through a node made for it (the test is sound)', () => {
    const node = join(dir, 'node');
    expect(execFileSync(p.probe, ['mknod', node, 'b', String(major), String(minor)], { encoding: 'utf8' })).toBe(
      'ok 0\n',
    );
    expect(execFileSync(p.probe, ['read', node, String(SECRET.length)], { encoding: 'utf8' })).toBe(
      `ok ${secretHex}\n`,
    );
    rmSync(node);
  });

  it('lets a container mknod the host disk, but not open it, wherever the node is', async () => {
    const r = await run(
      [],
      `probe mknod /tmp/disk b ${major} ${minor}; probe read /tmp/disk 19; probe openw /tmp/disk; rm /tmp/disk;
      probe mknod /dev/disk b ${major} ${minor}; probe read /dev/disk 19`,
    );
    // Every mount of a default container is nodev (EACCES): no devices cgroup is needed.
    expect(r.stdout).toBe('ok 0\nerr EACCES\nerr EACCES\nok 0\nerr EACCES\n');
    expect(r.stdout).not.toContain(secretHex);
  });

  it('stops a container that may mount (CAP_SYS_ADMIN) with the devices cgroup', async () => {
    // Its own tmpfs without nodev: only the devices cgroup stands between it and the disk.
    const r = await run(
      ['--cap-add', 'SYS_ADMIN'],
      `mkdir -p /mnt; mount -t tmpfs -o dev none /mnt && grep -c " /mnt .*nodev" /proc/self/mountinfo;
      probe mknod /mnt/disk b ${major} ${minor}; probe read /mnt/disk 19; probe openw /mnt/disk; probe read /dev/zero 1`,
    );
    expect(r.stdout).toBe('0\nok 0\nerr EPERM\nerr EPERM\nok 00\n');
    expect(r.stdout).not.toContain(secretHex);
  });

  it('keeps the default devices usable', async () => {
    // A node made for an allowed device opens nothing either: it is on a nodev mount.
    const r = await run(
      [],
      'probe read /dev/null 1; probe read /dev/zero 2; probe read /dev/urandom 0; probe openw /dev/full; probe openw /dev/null; probe mknod /tmp/z c 1 5; probe read /tmp/z 2',
    );
    expect(r.stdout).toBe('ok \nok 0000\nok \nerr ENOSPC\nok 1\nok 0\nerr EACCES\n');
  });

  it('adds a device with --device, with the access asked for', async () => {
    let r = await run(
      ['--device', `${loop}:/dev/xvda:r`],
      'probe read /dev/xvda 19; probe openw /dev/xvda; ls -l /dev/xvda | cut -c1',
    );
    expect(r.stdout).toBe(`ok ${secretHex}\nerr EPERM\nb\n`);
    r = await run(['--device', loop], `probe read ${loop} 19`);
    expect(r.stdout).toBe(`ok ${secretHex}\n`);
  });

  it('opens every device with --privileged (as docker does)', async () => {
    const r = await run(
      ['--privileged'],
      `probe mknod /tmp/disk b ${major} ${minor}; probe read /tmp/disk 19; rm /tmp/disk`,
    );
    expect(r.stdout).toBe(`ok 0\nok ${secretHex}\n`);
  });

  const bad: [string, string[], RegExp][] = [
    [
      'a missing device',
      ['--device', '/dev/nonexistent'],
      /^nsbox: device \/dev\/nonexistent: no such device on the host\n$/,
    ],
    [
      'a file that is no device',
      ['--device', '/etc/passwd'],
      /^nsbox: device \/etc\/passwd: not a character or block device\n$/,
    ],
    [
      'bad access letters',
      ['--device', '/dev/null:/dev/n:rwx'],
      /^nsbox: device \/dev\/null: access must be letters of rwm, got "rwx"\n$/,
    ],
    [
      'a bad --device',
      ['--device', '/dev/null::r'],
      /^nsbox: invalid --device value: \/dev\/null::r \(expected HOST\[:CONTAINER\]\[:rwm\]\)\n$/,
    ],
  ];
  for (const [what, args, message] of bad) {
    it(`rejects ${what} with one line`, async () => {
      const r = await run(args, 'true');
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(125);
    });
  }
});

describe('cgroup v2 device program', () => {
  // This host's devices come from v1; the v2 program is attached to a cgroup2 directory of its own
  // here, and a host process in it tries the same opens.
  const v2 = '/sys/fs/cgroup/unified';
  const cg = join(v2, `nsbox-devtest-${process.pid}`);
  afterAll(() => {
    try {
      rmdirSync(cg);
    } catch {
      /* gone */
    }
  });

  it('allows the default devices and nothing else, as the v1 rules do', () => {
    let root = v2;
    try {
      statSync(join(v2, 'cgroup.procs'));
    } catch {
      root = '/sys/fs/cgroup';
    }
    const dirPath = root === v2 ? cg : join(root, `nsbox-devtest-${process.pid}`);
    mkdirSync(dirPath);
    try {
      const fd = openSync(dirPath, 'r');
      const prog = native.bpfLoadDeviceProgram(
        deviceProgram([...DEFAULT_DEVICE_RULES, { type: 'c', major: 1, minor: 11, access: 'r' }]),
      );
      native.bpfAttachDevice(prog, fd);
      closeSync(prog);
      closeSync(fd);
      const node = join(dir, 'v2node');
      const script = `echo $$ > ${dirPath}/cgroup.procs; P=${p.probe}; $P mknod ${node} b ${major} ${minor}; $P read ${node} 19; $P openw ${node};
        $P read /dev/null 1; $P read /dev/zero 1; $P openw /dev/full; $P openw /dev/kmsg; rm ${node}`;
      const out = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
      expect(out.stdout).toBe('ok 0\nerr EPERM\nerr EPERM\nok \nok 00\nerr ENOSPC\nerr EPERM\n');
    } finally {
      rmdirSync(dirPath);
    }
  });
});
