// Rootless: an ordinary user (made for these tests) runs the CLI and gets root inside a user
// namespace that maps it — a full map through newuidmap/newgidmap and /etc/subuid, else one id.
import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectNothingLeft, snapshot } from '../helpers.js';
import {
  cliCopy,
  createUser,
  nsboxAs,
  removeUser,
  restoreSubIds,
  rootfsCopy,
  saveSubIds,
  scratch,
  setSubIds,
  type TestUser,
} from './setup.js';

const NAME = 'nsboxtest';
const SUB = 200000;

let dir: string;
let rootfs: string;
let cli: string;
let user: TestUser;
let subids: Map<string, string | null>;

beforeAll(() => {
  dir = scratch();
  rootfs = rootfsCopy(dir);
  cli = cliCopy(dir);
  subids = saveSubIds();
  user = createUser(NAME, dir);
});
afterAll(() => {
  try {
    removeUser(user);
  } finally {
    if (subids) restoreSubIds(subids);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

const run = (args: string[]) => nsboxAs(user, cli, args);
const mapLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
const owner = (path: string) => {
  const st = statSync(path);
  return [st.uid, st.gid];
};
const DOCKER = 0xa80425fbn;
const capEff = (out: string) => BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(out)![1]}`);

describe('rootless with subordinate ids (newuidmap/newgidmap)', () => {
  beforeAll(() => {
    for (const helper of ['newuidmap', 'newgidmap']) execFileSync('sh', ['-c', `command -v ${helper}`]); // Debian package uidmap
    setSubIds(subids, [NAME], [`${NAME}:${SUB}:65536`]);
  });

  it('is not root on the host, but root inside with a 65536-id map', async () => {
    expect(
      execFileSync(
        'setpriv',
        ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', 'id', '-u'],
        { encoding: 'utf8' },
      ).trim(),
    ).toBe(String(user.uid));
    const r = await run([rootfs, 'sh', '-c', 'id; echo --; cat /proc/self/uid_map; echo --; cat /proc/self/gid_map']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [id, uidMap, gidMap] = r.stdout.split('--\n');
    expect(id.trim()).toBe('uid=0(root) gid=0(root)');
    expect(mapLines(uidMap)).toEqual([
      [0, user.uid, 1],
      [1, SUB, 65535],
    ]);
    expect(mapLines(gidMap)).toEqual([
      [0, user.gid, 1],
      [1, SUB, 65535],
    ]);
  });

  it('owns what container root makes as the user, and what container uid 1000 makes as a subordinate id', async () => {
    const r = await run([rootfs, 'sh', '-c', 'touch /tmp/rl-root; chown 1000:1000 /tmp/rl-root; touch /tmp/rl-root2']);
    expect(r.stderr).toBe('');
    expect(owner(`${rootfs}/tmp/rl-root2`)).toEqual([user.uid, user.gid]);
    expect(owner(`${rootfs}/tmp/rl-root`)).toEqual([SUB + 999, SUB + 999]);
    const u = await run(['--user', '1000', rootfs, 'sh', '-c', 'id; touch /tmp/rl-user']);
    expect(u.stdout).toBe('uid=1000(user) gid=1000(user)\n');
    expect(owner(`${rootfs}/tmp/rl-user`)).toEqual([SUB + 999, SUB + 999]);
    for (const f of ['rl-root', 'rl-root2', 'rl-user']) rmSync(`${rootfs}/tmp/${f}`, { force: true });
  });

  it('passes exit codes through: the status, 127 not found, 126 not executable, 125 nsbox', async () => {
    expect((await run([rootfs, 'sh', '-c', 'exit 7'])).code).toBe(7);
    const nf = await run([rootfs, 'no-such-command']);
    expect(nf.code).toBe(127);
    expect(nf.stderr).toBe('nsbox: executable file not found in rootfs: no-such-command\n');
    expect((await run([rootfs, '/etc/passwd'])).code).toBe(126);
    const bad = await run(['--uidmap', '0:0:1', rootfs, 'true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/^nsbox: \S*newuidmap \d+ 0 0 1: .+$/m);
  });

  it('runs detached, and exec joins it as root or as --user, with exit codes', async () => {
    const name = `rl-${process.pid}`;
    const d = await run(['run', '-d', '--name', name, rootfs, 'sleep', '60']);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    try {
      const e = await run(['exec', name, 'sh', '-c', 'id; cat /proc/self/uid_map; exit 5']);
      expect(e.stderr).toBe('');
      expect(e.code).toBe(5);
      const [id, ...map] = e.stdout.trim().split('\n');
      expect(id).toBe('uid=0(root) gid=0(root)');
      expect(mapLines(map.join('\n'))).toEqual([
        [0, user.uid, 1],
        [1, SUB, 65535],
      ]);
      const u = await run(['exec', '--user', '1000', name, 'sh', '-c', 'id; grep CapEff /proc/self/status']);
      expect(u.stderr).toBe('');
      expect(u.stdout).toMatch(/^uid=1000\(user\) gid=1000\(user\)\nCapEff:\s*0+\n$/);
    } finally {
      const rm = await run(['rm', '-f', name]);
      expect(rm.code).toBe(0);
    }
  });

  it('has its own proc, sysfs and devpts, and lo up in its own network namespace', async () => {
    const r = await run([
      rootfs,
      'sh',
      '-c',
      'grep -E " /(proc|sys|dev/pts) " /proc/self/mounts; ip -o link; hostname',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ \/proc proc rw,nosuid,nodev,noexec/);
    expect(r.stdout).toMatch(/ \/sys sysfs ro,nosuid,nodev,noexec/);
    expect(r.stdout).toMatch(/^devpts \/dev\/pts devpts .*gid=\d+/m);
    expect(r.stdout).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/m);
  });

  it("has Docker's default capabilities inside: mount is refused until --cap-add SYS_ADMIN; --cap-drop ALL empties CapEff", async () => {
    const d = await run([rootfs, 'sh', '-c', 'grep CapEff /proc/self/status; mount -t tmpfs none /tmp']);
    expect(capEff(d.stdout)).toBe(DOCKER);
    expect(d.code).not.toBe(0);
    const a = await run([
      '--cap-add',
      'SYS_ADMIN',
      rootfs,
      'sh',
      '-c',
      'mount -t tmpfs none /tmp && grep -c " /tmp " /proc/self/mounts',
    ]);
    expect(a.stderr).toBe('');
    expect(a.stdout).toBe('1\n');
    const none = await run(['--cap-drop', 'ALL', rootfs, 'grep', 'Cap[EPB]', '/proc/self/status']);
    expect(none.stdout).toMatch(/CapPrm:\s*0+\nCapEff:\s*0+\nCapBnd:\s*0+\n/);
  });

  it('keeps host root out of reach: a host-root file stays unwritable for container root', async () => {
    const r = await run([rootfs, 'sh', '-c', 'echo x >> /etc/passwd']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Permission denied/);
  });
});

describe('rootless without subordinate ids', () => {
  beforeAll(() => setSubIds(subids, [NAME], []));

  it('maps only the user, as root, and warns in one line what is missing', async () => {
    const r = await run([rootfs, 'sh', '-c', 'id; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups']);
    expect(r.code).toBe(0);
    const warn = r.stderr.trim().split('\n');
    expect(warn).toHaveLength(1);
    expect(warn[0]).toBe(
      `nsbox: warning: rootless with a single-id map (container root is uid ${user.uid}, no other ids): missing a range for ${NAME} in /etc/subuid and /etc/subgid (e.g. ${NAME}:100000:65536)`,
    );
    const [id, ...rest] = r.stdout.trim().split('\n');
    expect(id).toBe('uid=0(root) gid=0(root)');
    expect(rest.map((l) => l.trim().split(/\s+/))).toEqual([
      ['0', String(user.uid), '1'],
      ['0', String(user.gid), '1'],
      ['deny'],
    ]);
  });

  it('still runs with its own devpts (no tty group to map) and exit codes', async () => {
    const r = await run([rootfs, 'sh', '-c', 'grep " /dev/pts " /proc/self/mounts; touch /tmp/single; exit 3']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^devpts \/dev\/pts devpts rw,/);
    expect(r.stdout).not.toMatch(/gid=/);
    expect(owner(`${rootfs}/tmp/single`)).toEqual([user.uid, user.gid]);
    rmSync(`${rootfs}/tmp/single`, { force: true });
  });

  it('says why --user and --group-add cannot work with one id', async () => {
    const u = await run(['--user', '1000', rootfs, 'true']);
    expect(u.code).toBe(125);
    expect(u.stderr).toMatch(
      new RegExp(`^nsbox: --user: uid 1000 is not mapped in the user namespace \\(uid map 0:${user.uid}:1\\)$`, 'm'),
    );
    const g = await run(['--group-add', '5', rootfs, 'true']);
    expect(g.code).toBe(125);
    expect(g.stderr).toMatch(
      /^nsbox: --group-add: setgroups is denied in a single-id user namespace \(rootless without subordinate ids\)$/m,
    );
  });
});

describe('rootless refusals', () => {
  it('says that resource limits need root or a delegated cgroup, not a bare EPERM', () => {
    const script = `import { Container } from '${cli.replace(/run\.js$/, 'index.js')}';
try { new Container({ rootfs: '${rootfs}', command: ['true'], limits: { memory: '64m' } }); console.log('started'); }
catch (e) { console.log(e.message); }`;
    const out = execFileSync(
      'setpriv',
      [
        '--reuid',
        String(user.uid),
        '--regid',
        String(user.gid),
        '--clear-groups',
        process.execPath,
        '--input-type=module',
        '-e',
        script,
      ],
      { encoding: 'utf8', cwd: '/' },
    );
    expect(out.trim()).toMatch(
      /^rootless: resource limits need a cgroup v2 subtree delegated to you.*; run as root, or start nsbox in a delegated cgroup/,
    );
  });
});
