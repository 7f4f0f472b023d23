// Volumes, tmpfs, the read-only root, and the masked and read-only paths of /proc and /sys.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MASKED_PATHS, READONLY_PATHS } from '../src/rootfs/mounts.js';
import { expectNothingLeft, nsbox, snapshot } from './helpers.js';
import { probeRootfs, type ProbeRoot } from './tools/probe.js';

let p: ProbeRoot;
let host: string; // a host directory for volume sources
let before: ReturnType<typeof snapshot>;
beforeAll(() => {
  p = probeRootfs();
  host = mkdtempSync(join(tmpdir(), 'nsbox-vol-'));
  writeFileSync(join(host, 'hello'), 'hello from the host\n');
  writeFileSync(join(host, 'single'), 'one file\n');
});
afterAll(() => {
  p?.cleanup();
  rmSync(host, { recursive: true, force: true });
});
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

const run = (args: string[], script: string) => nsbox([...args, p.root, 'sh', '-c', script]);

describe('volumes', () => {
  it('binds a host directory read-write, and writes reach the host', async () => {
    const r = await run(
      ['-v', `${host}:/data`],
      'cat /data/hello; echo inside > /data/written; grep " /data " /proc/self/mountinfo | cut -d" " -f6',
    );
    expect(r.stdout).toBe('hello from the host\nrw,nodev,relatime\n');
    expect(readFileSync(join(host, 'written'), 'utf8')).toBe('inside\n');
  });

  it('binds read-only with :ro and with --mount ...,ro', async () => {
    for (const args of [
      ['-v', `${host}:/data:ro`],
      ['--mount', `type=bind,src=${host},dst=/data,readonly`],
    ]) {
      const r = await run(args, 'cat /data/hello; echo x > /data/nope; echo $?');
      expect(r.stdout).toBe('hello from the host\n1\n');
      expect(r.stderr).toMatch(/Read-only file system/);
      expect(existsSync(join(host, 'nope'))).toBe(false);
    }
  });

  it('binds a single file, creating the mount point in the rootfs', async () => {
    const r = await run(['-v', `${host}/single:/etc/deep/er/single.conf:ro`], 'cat /etc/deep/er/single.conf');
    expect(r.stdout).toBe('one file\n');
    expect(statSync(join(p.root, 'etc/deep/er/single.conf')).isFile()).toBe(true);
  });

  it('mounts a parent before its child whatever the order given', async () => {
    const r = await run(
      ['--tmpfs', '/data/tmp', '-v', `${host}:/data`],
      'cat /data/hello; touch /data/tmp/x; ls /data/tmp',
    );
    expect(r.stdout).toBe('hello from the host\nx\n');
    expect(existsSync(join(host, 'tmp', 'x'))).toBe(false); // the tmpfs covered the volume's tmp
  });

  it('keeps volumes writable under --read-only, the root not', async () => {
    const r = await run(['--read-only', '-v', `${host}:/data`], 'touch /data/ok && echo ok; touch /nope 2>&1');
    expect(r.stdout).toMatch(/^ok\ntouch: \/nope: Read-only file system\n$/);
  });
});

describe('tmpfs', () => {
  it('mounts a sized tmpfs, noexec, nosuid and nodev by default', async () => {
    const r = await run(
      ['--tmpfs', '/scratch:size=4m,mode=700'],
      'df -k /scratch | tail -1 | awk "{print \\$2}"; stat -c %a /scratch; cp /bin/busybox /scratch/busybox; /scratch/busybox true; echo rc=$?; grep " /scratch " /proc/self/mountinfo | cut -d" " -f6',
    );
    const [size, mode, rc, flags] = r.stdout.trim().split('\n');
    expect(size).toBe('4096');
    expect(mode).toBe('700');
    expect(rc).toBe('rc=126');
    expect(flags.split(',')).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev', 'noexec']));
  });

  it('takes exec and ro, and --mount type=tmpfs', async () => {
    const r = await run(
      ['--tmpfs', '/x:exec', '--mount', 'type=tmpfs,dst=/y,tmpfs-size=1m,ro'],
      'cp /bin/busybox /x/busybox && /x/busybox true && echo exec-ok; touch /y/z 2>&1',
    );
    expect(r.stdout).toBe('exec-ok\ntouch: /y/z: Read-only file system\n');
  });
});

describe('masked and read-only paths', () => {
  const present = MASKED_PATHS.filter((f) => existsSync(f));

  it('masks the OCI default paths: files read empty, directories are empty', async () => {
    expect(present.length).toBeGreaterThan(2);
    const script = present
      .map((f) => `echo "${f} $(cat ${f} 2>/dev/null | wc -c) $([ -d ${f} ] && ls -A ${f} | wc -l || echo 0)"`)
      .join('; ');
    const r = await run([], script);
    for (const line of r.stdout.trim().split('\n')) expect(line).toMatch(/ 0 0$/);
    // Unmasked, the host's content shows (at least one of them is not empty).
    const open = await run(['--unmask-paths'], script);
    expect(
      open.stdout
        .trim()
        .split('\n')
        .some((l) => !/ 0 0$/.test(l)),
    ).toBe(true);
  });

  it('makes /proc/sys, /proc/bus, /proc/fs, /proc/irq (and /proc/sysrq-trigger) read-only', async () => {
    const paths = READONLY_PATHS.filter((f) => existsSync(f));
    const r = await run(
      [],
      `${paths.map((f) => `grep -c " ${f} ro," /proc/self/mountinfo`).join('; ')}; echo x > /proc/sys/kernel/hostname; echo $?`,
    );
    expect(r.stdout).toBe(`${paths.map(() => '1\n').join('')}1\n`);
    expect(r.stderr).toMatch(/Read-only file system/);
    const open = await run(['--unmask-paths', '--hostname', 'a'], 'echo b > /proc/sys/kernel/hostname && hostname');
    expect(open.stdout).toBe('b\n'); // the UTS namespace's own hostname: writable only when unmasked
  });
});

describe('symlinks cannot send a mount out of the rootfs', () => {
  let outside: string;
  beforeAll(() => {
    outside = mkdtempSync(join(tmpdir(), 'nsbox-outside-'));
  });
  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  it('resolves a symlink that climbs out (../../..) inside the rootfs instead', async () => {
    symlinkSync(`../../../../../../../..${outside}`, join(p.root, 'escape'));
    const r = await run(['-v', `${host}:/escape/sub`], 'cat /escape/sub/hello');
    expect(r.stdout).toBe('hello from the host\n');
    expect(readdirSync(outside)).toEqual([]); // nothing made on the host
    expect(existsSync(join(p.root, outside, 'sub'))).toBe(true); // the mount point is inside
  });

  it('refuses a mount target through a magic link (/proc/self/...)', async () => {
    symlinkSync('/proc/self/cwd', join(p.root, 'magic'));
    const r = await run(['-v', `${host}:/magic/x`], 'true');
    expect(r.stderr).toBe(
      'nsbox: make the mount point /magic/x in the root: Too many symbolic links encountered (ELOOP)\n',
    );
    expect(r.code).toBe(125);
  });

  it('holds while a symlink is swapped in and out under the target as containers start (TOCTOU)', async () => {
    // A hostile neighbour that shares the rootfs flips /race between a directory and a symlink out.
    mkdirSync(join(p.root, 'race'));
    symlinkSync(`../../../../../../..${outside}`, join(p.root, 'race.link'));
    const { spawn } = await import('node:child_process');
    const racer = spawn(p.probe, ['swap', join(p.root, 'race'), join(p.root, 'race.link'), '8'], { stdio: 'ignore' });
    try {
      let mounted = 0,
        refused = 0;
      for (let i = 0; i < 20; i++) {
        const r = await run(['-v', `${host}:/race/vol`], 'true');
        if (r.code === 0) mounted++;
        else {
          expect(r.stderr).toMatch(/^nsbox: [^\n]*\n$/); // a clean refusal, if any
          refused++;
        }
      }
      expect(mounted + refused).toBe(20);
      expect(readdirSync(outside)).toEqual([]);
    } finally {
      racer.kill('SIGKILL');
    }
  });
});

describe('bad mounts', () => {
  const cases: [string, string[], RegExp][] = [
    [
      'a relative volume target',
      ['-v', '/tmp:data'],
      /^nsbox: volume \/tmp:data: target must be an absolute path, got "data"\n$/,
    ],
    [
      'a named volume',
      ['-v', 'myvol:/data'],
      /^nsbox: invalid --volume value: myvol:\/data \(the host path must be absolute; named volumes are not supported\)\n$/,
    ],
    [
      'a missing source',
      ['-v', '/nonexistent/dir:/data'],
      /^nsbox: volume \/nonexistent\/dir:\/data: source not found: \/nonexistent\/dir\n$/,
    ],
    [
      'a target under /proc',
      ['-v', '/tmp:/proc/sys'],
      /^nsbox: volume \/tmp:\/proc\/sys: mounts over \/proc are not allowed \(\/proc\/sys\)\n$/,
    ],
    ['the root as a target', ['--tmpfs', '/'], /^nsbox: tmpfs \/: cannot mount over the root\n$/],
    ['a duplicate target', ['--tmpfs', '/x', '-v', '/tmp:/x/'], /^nsbox: duplicate mount target: \/x\n$/],
    ['a bad tmpfs size', ['--tmpfs', '/x:size=12q'], /^nsbox: tmpfs \/x: invalid size "12q"/],
    [
      'a bad --mount',
      ['--mount', 'type=volume,dst=/x'],
      /^nsbox: invalid --mount value: type=volume,dst=\/x \(type must be bind or tmpfs\)\n$/,
    ],
    ['a --mount without dst', ['--mount', 'type=bind,src=/tmp'], /^nsbox: invalid --mount value: .*dst= is required/],
    ['a bad volume option', ['-v', '/tmp:/x:rx'], /^nsbox: invalid --volume option: rx \(ro or rw\)\n$/],
  ];
  for (const [what, args, message] of cases) {
    it(`rejects ${what} with one line`, async () => {
      const r = await run(args, 'true');
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(125);
    });
  }
});
