// Users and capabilities: --user, --group-add, Docker's default capability set, --cap-add and
// --cap-drop on every set, and no_new_privs against a setuid-root binary.
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CAP_NAMES } from '../../dist/userns/caps.js';
import { expectNothingLeft, nsbox, snapshot } from '../helpers.js';
import { rootfsCopy, scratch } from './setup.js';

let dir: string;
let rootfs: string;
beforeAll(() => {
  dir = scratch();
  rootfs = rootfsCopy(dir);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

/** Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP. */
const DOCKER = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31].reduce((m, b) => m | (1n << BigInt(b)), 0n);
const bit = (n: number) => 1n << BigInt(n);
const SYS_ADMIN = 21,
  NET_BIND_SERVICE = 10,
  CHOWN = 0;

/** The Cap* lines of /proc/self/status inside, as numbers. */
function caps(stdout: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const m of stdout.matchAll(/^(Cap\w+|NoNewPrivs):\s*([0-9a-f]+)$/gm))
    out[m[1]] = BigInt(m[1] === 'NoNewPrivs' ? m[2] : `0x${m[2]}`);
  return out;
}
const STATUS = 'grep -E "^(Cap|NoNewPrivs)" /proc/self/status';
const hostBounding = caps(readFileSync('/proc/self/status', 'utf8')).CapBnd;

describe('capabilities', () => {
  it("give container root Docker's default set, in bounding, permitted and effective only", async () => {
    const r = await nsbox([rootfs, 'sh', '-c', STATUS]);
    expect(r.code).toBe(0);
    expect(caps(r.stdout)).toEqual({
      CapInh: 0n,
      CapPrm: DOCKER,
      CapEff: DOCKER,
      CapBnd: DOCKER,
      CapAmb: 0n,
      NoNewPrivs: 1n,
    });
  });

  it('refuse mount by default; --cap-add SYS_ADMIN allows it', async () => {
    const mount = 'mount -t tmpfs none /tmp && grep -c " /tmp " /proc/self/mounts';
    const denied = await nsbox([rootfs, 'sh', '-c', mount]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/permission denied|not permitted/i);
    const allowed = await nsbox(['--cap-add', 'SYS_ADMIN', rootfs, 'sh', '-c', `${mount}; ${STATUS}`]);
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
    expect(allowed.stdout.split('\n')[0]).toBe('1');
    expect(caps(allowed.stdout).CapEff).toBe(DOCKER | bit(SYS_ADMIN));
  });

  it('--cap-drop ALL leaves every set empty', async () => {
    const r = await nsbox(['--cap-drop', 'ALL', rootfs, 'sh', '-c', `${STATUS}; chown 5 /tmp 2>&1; true`]);
    expect(caps(r.stdout)).toEqual({ CapInh: 0n, CapPrm: 0n, CapEff: 0n, CapBnd: 0n, CapAmb: 0n, NoNewPrivs: 1n });
    expect(r.stdout).toMatch(/chown: \/tmp: Operation not permitted/);
  });

  it('--cap-drop takes one out of every set, with or without CAP_ and in any case', async () => {
    const r = await nsbox(['--cap-drop', 'cap_chown', '--cap-drop', 'Net_Raw', rootfs, 'sh', '-c', STATUS]);
    const want = DOCKER & ~bit(CHOWN) & ~bit(13);
    expect(caps(r.stdout)).toMatchObject({ CapPrm: want, CapEff: want, CapBnd: want });
  });

  it('--cap-drop ALL --cap-add X leaves only X', async () => {
    const r = await nsbox(['--cap-drop', 'ALL', '--cap-add', 'NET_BIND_SERVICE', rootfs, 'sh', '-c', STATUS]);
    expect(caps(r.stdout)).toMatchObject({
      CapPrm: bit(NET_BIND_SERVICE),
      CapEff: bit(NET_BIND_SERVICE),
      CapBnd: bit(NET_BIND_SERVICE),
    });
  });

  it('--cap-add ALL and --privileged give every capability nsbox holds; --privileged also lifts no_new_privs', async () => {
    const all = await nsbox(['--cap-add', 'ALL', '--cap-drop', 'MKNOD', rootfs, 'sh', '-c', STATUS]);
    expect(caps(all.stdout)).toMatchObject({ CapEff: hostBounding & ~bit(27), NoNewPrivs: 1n });
    const priv = await nsbox(['--privileged', rootfs, 'sh', '-c', STATUS]);
    expect(caps(priv.stdout)).toMatchObject({ CapEff: hostBounding, CapBnd: hostBounding, NoNewPrivs: 0n });
  });

  it('refuses an unknown capability, and one nsbox does not hold itself', async () => {
    const unknown = await nsbox(['--cap-add', 'SYS_FOO', rootfs, 'true']);
    expect(unknown.code).toBe(125);
    expect(unknown.stderr).toBe('nsbox: --cap-add: unknown capability: SYS_FOO\n');
    const missing = [...Array(41).keys()].find((n) => !(hostBounding & bit(n)));
    if (missing === undefined) return; // this host's root holds every capability
    const names = CAP_NAMES;
    const r = await nsbox(['--cap-add', names[missing], rootfs, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(
      new RegExp(`^nsbox: --cap-add ${names[missing]}: nsbox itself does not hold CAP_${names[missing]}`),
    );
  });
});

describe('--user and --group-add', () => {
  it('--user 1000 runs as 1000 with no capabilities (the default set stays only as the bound)', async () => {
    const r = await nsbox(['--user', '1000', rootfs, 'sh', '-c', `id; ${STATUS}`]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('uid=1000(user) gid=1000(user)');
    expect(caps(r.stdout)).toEqual({ CapInh: 0n, CapPrm: 0n, CapEff: 0n, CapBnd: DOCKER, CapAmb: 0n, NoNewPrivs: 1n });
  });

  it('a capability added by name reaches a non-root user through the ambient set', async () => {
    const r = await nsbox([
      '--user',
      '1000',
      '--cap-add',
      'NET_BIND_SERVICE',
      rootfs,
      'sh',
      '-c',
      `nc -l -p 80 -w 5 & i=0; until netstat -lnt | grep -q ":80 " || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.05; done; netstat -lnt | grep -c ":80 "; ${STATUS}`,
    ]);
    expect(r.stdout.split('\n')[0]).toBe('1');
    const b = bit(NET_BIND_SERVICE);
    expect(caps(r.stdout)).toMatchObject({ CapInh: b, CapPrm: b, CapEff: b, CapAmb: b, CapBnd: DOCKER });
  });

  it('takes UID:GID, names from the rootfs, and extra groups', async () => {
    const a = await nsbox(['--user', '1000:5', rootfs, 'id']);
    expect(a.stdout).toBe('uid=1000(user) gid=5(tty)\n');
    const b = await nsbox(['--user', 'nobody', '--group-add', 'tty', '--group-add', '1000', rootfs, 'id']);
    expect(b.stdout).toBe('uid=65534(nobody) gid=65534(nogroup) groups=5(tty),1000(user)\n');
    const c = await nsbox(['--user', '4321', rootfs, 'id']);
    expect(c.stdout).toBe('uid=4321 gid=0(root)\n'); // no passwd entry: gid 0, as Docker does
  });

  it('refuses a name the rootfs does not know', async () => {
    const r = await nsbox(['--user', 'nosuchuser', rootfs, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toBe(`nsbox: --user: no user nosuchuser in ${rootfs}/etc/passwd\n`);
    const g = await nsbox(['--group-add', 'nosuchgroup', rootfs, 'true']);
    expect(g.stderr).toBe(`nsbox: --group-add: no group nosuchgroup in ${rootfs}/etc/group\n`);
  });
});

describe('no_new_privs', () => {
  it('keeps a setuid-root binary from raising a user to root; opting out shows the bit matters', async () => {
    const on = await nsbox(['--user', '1000', rootfs, 'sh', '-c', `suidtest; ${STATUS}`]);
    expect(on.stdout.split('\n')[0]).toBe('ruid=1000 euid=1000');
    expect(caps(on.stdout).NoNewPrivs).toBe(1n);
    const off = await nsbox(['--user', '1000', '--no-new-privileges=false', rootfs, 'sh', '-c', `suidtest; ${STATUS}`]);
    expect(off.stdout.split('\n')[0]).toBe('ruid=1000 euid=0');
    expect(caps(off.stdout).NoNewPrivs).toBe(0n);
  });

  it('rejects a --no-new-privileges value that is not a boolean', async () => {
    const r = await nsbox(['--no-new-privileges=maybe', rootfs, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toBe('nsbox: invalid --no-new-privileges value: maybe (true or false)\n');
  });
});
