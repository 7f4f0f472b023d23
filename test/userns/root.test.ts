// --userns, --uidmap and --gidmap for containers started by root: container root is an
// unprivileged id on the host.
import { readFileSync, rmSync, statSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Container, run } from '../../dist/index.js';
import { writeIdMaps } from '../../dist/userns/part.js';
import { expectNothingLeft, nsbox, snapshot } from '../helpers.js';
import { restoreSubIds, rootfsCopy, saveSubIds, scratch, setSubIds } from './setup.js';

let dir: string;
let rootfs: string;
let subids: Map<string, string | null>;

beforeAll(() => {
  dir = scratch();
  rootfs = rootfsCopy(dir);
  subids = saveSubIds();
  setSubIds(subids, ['nsbox'], []); // no `nsbox` range: the documented default applies
});
afterAll(() => {
  if (subids) restoreSubIds(subids);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

const mapLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
const owner = (path: string) => {
  const st = statSync(path);
  return [st.uid, st.gid];
};

describe('--userns as root', () => {
  it('makes container root host id 1000000000 by default, and id and uid_map say so', async () => {
    const r = await nsbox([
      '--userns',
      rootfs,
      'sh',
      '-c',
      'id; echo --; cat /proc/self/uid_map; echo --; cat /proc/self/gid_map',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [id, uidMap, gidMap] = r.stdout.split('--\n');
    expect(id.trim()).toBe('uid=0(root) gid=0(root)');
    expect(mapLines(uidMap)).toEqual([[0, 1000000000, 65536]]);
    expect(mapLines(gidMap)).toEqual([[0, 1000000000, 65536]]);
  });

  it('gives a file made by container root the mapped owner on the host', async () => {
    const r = await nsbox([
      '--userns',
      rootfs,
      'sh',
      '-c',
      'touch /tmp/plain /tmp/given && chown 5:6 /tmp/given && chown 0:0 /tmp',
    ]);
    // /tmp belongs to host root, which the namespace does not map: container root may not take it.
    expect(r.stderr).toMatch(/chown: \/tmp: (Operation not permitted|Invalid argument)/);
    expect(r.code).toBe(1);
    expect(owner(`${rootfs}/tmp/plain`)).toEqual([1000000000, 1000000000]);
    expect(owner(`${rootfs}/tmp/given`)).toEqual([1000000005, 1000000006]);
    expect(owner(`${rootfs}/tmp`)).toEqual([0, 0]);
    rmSync(`${rootfs}/tmp/plain`, { force: true });
    rmSync(`${rootfs}/tmp/given`, { force: true });
  });

  it('takes the range from an `nsbox` entry in /etc/subuid and /etc/subgid', async () => {
    setSubIds(subids, ['nsbox'], ['nsbox:300000:70000']);
    try {
      const r = await nsbox(['--userns', rootfs, 'sh', '-c', 'cat /proc/self/uid_map; touch /tmp/sub']);
      expect(r.code).toBe(0);
      expect(mapLines(r.stdout)).toEqual([[0, 300000, 65536]]);
      expect(owner(`${rootfs}/tmp/sub`)).toEqual([300000, 300000]);
    } finally {
      setSubIds(subids, ['nsbox'], []);
      rmSync(`${rootfs}/tmp/sub`, { force: true });
    }
  });

  it('writes explicit --uidmap and --gidmap ranges, and --user picks an id in them', async () => {
    const r = await nsbox([
      '--uidmap',
      '0:500000:1000',
      '--uidmap',
      '1000:700000:10',
      '--gidmap',
      '0:600000:2000',
      '--user',
      '1005:1500',
      rootfs,
      'sh',
      '-c',
      'id; cat /proc/self/uid_map; touch /tmp/mapped',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [id, ...map] = r.stdout.trim().split('\n');
    expect(id).toBe('uid=1005 gid=1500');
    expect(mapLines(map.join('\n'))).toEqual([
      [0, 500000, 1000],
      [1000, 700000, 10],
    ]);
    expect(owner(`${rootfs}/tmp/mapped`)).toEqual([700005, 601500]);
    rmSync(`${rootfs}/tmp/mapped`, { force: true });
  });

  it('uses the uid map for gids when only --uidmap is given', async () => {
    const r = await nsbox(['--uidmap', '0:400000:65536', rootfs, 'cat', '/proc/self/gid_map']);
    expect(mapLines(r.stdout)).toEqual([[0, 400000, 65536]]);
  });

  it('mounts its own proc and sysfs, and devpts with the tty group', async () => {
    const r = await nsbox([
      '--userns',
      rootfs,
      'sh',
      '-c',
      'grep -E " /(proc|sys|dev/pts) " /proc/self/mounts; ls /sys/class/net',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\S+ \/proc proc rw,nosuid,nodev,noexec/m);
    expect(r.stdout).toMatch(/^\S+ \/sys sysfs ro,nosuid,nodev,noexec/m);
    expect(r.stdout).toMatch(/^devpts \/dev\/pts devpts .*gid=1000000005,/m); // the tty group, shown as its host id
    expect(r.stdout.trim().split('\n').pop()).toBe('lo');
  });

  it('binds the host /sys read-only when sysfs cannot be mounted (host network namespace)', async () => {
    const r = await run({
      rootfs,
      userns: true,
      namespaces: { net: false },
      command: ['sh', '-c', 'grep " /sys " /proc/self/mounts; touch /sys/x 2>&1; ls /sys/class/net | grep -c .'],
    });
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    const [mount, touch, count] = r.stdout.toString().trim().split('\n');
    expect(mount).toMatch(/^sysfs \/sys sysfs ro,/);
    expect(touch).toMatch(/Read-only file system/);
    expect(Number(count)).toBeGreaterThanOrEqual(1);
  });
});

describe('map errors', () => {
  const bad: [string[], RegExp][] = [
    [['--uidmap', '0:100000'], /^nsbox: invalid --uidmap value: 0:100000 \(expected CONTAINER:HOST:SIZE/],
    [['--uidmap', '0:100000:0'], /^nsbox: invalid --uidmap 0:100000:0: size must be at least 1$/],
    [['--uidmap', 'a:b:c'], /^nsbox: invalid --uidmap value: a:b:c/],
    [['--uidmap', '0:4294967290:10'], /goes past id 4294967294/],
    [
      ['--uidmap', '0:100000:10', '--uidmap', '5:200000:10'],
      /^nsbox: --uidmap 0:100000:10 and 5:200000:10 overlap inside the container$/,
    ],
    [
      ['--gidmap', '0:100000:10', '--gidmap', '20:100005:10'],
      /^nsbox: --gidmap 0:100000:10 and 20:100005:10 overlap on the host$/,
    ],
    [['--uidmap', '1:100000:10'], /^nsbox: --user: uid 0 is not mapped in the user namespace \(uid map 1:100000:10\)$/],
    [['--userns', '--user', '70000'], /^nsbox: --user: uid 70000 is not mapped/],
    [['--userns', '--group-add', '70000'], /^nsbox: --group-add: gid 70000 is not mapped/],
  ];
  for (const [args, message] of bad) {
    it(`refuses ${args.join(' ')} before anything is made`, async () => {
      const r = await nsbox([...args, rootfs, 'true']);
      expect(r.code).toBe(125);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(message);
    });
  }

  it('names the file when the kernel refuses a map (written a second time)', async () => {
    const c = new Container({ rootfs, command: ['sleep', '30'], userns: true, stdio: [0, 1, 2] });
    await c.ready;
    try {
      const plan = {
        how: 'direct' as const,
        uidMap: [{ container: 0, host: 1000000000, size: 1 }],
        gidMap: [{ container: 0, host: 1000000000, size: 1 }],
        setgroups: true,
      };
      expect(() => writeIdMaps(c.pid, plan)).toThrow(
        new RegExp(`^write /proc/${c.pid}/uid_map: Operation not permitted \\(EPERM\\)$`),
      );
      expect(readFileSync(`/proc/${c.pid}/uid_map`, 'utf8')).toMatch(/^\s*0\s+1000000000\s+65536\s*$/);
    } finally {
      c.kill('SIGKILL');
      await c.exited;
    }
  });
});
