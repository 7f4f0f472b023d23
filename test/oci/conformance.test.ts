// What the runtime spec states beyond the life cycle (runtime-tools' validation checks the same):
// rootfsPropagation, --preserve-fds, namespaces joined by path (mount, user), linux.devices made as
// the config describes them, the mounts' sources as given.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, collect, hostMounts, ROOTFS } from '../helpers.js';
import { type Cfg, harness } from './harness.js';

const root = process.getuid?.() === 0;
const h = harness('nsbox-oci-conf-');
const { rt, bundle, scratch, state } = h;
const ourMounts = () => hostMounts().filter((m) => m.startsWith(scratch) || m.startsWith(ROOTFS));

beforeAll(() => h.init());
afterAll(async () => {
  for (const id of existsSync(state) ? readdirSync(state) : []) await rt(['delete', '--force', id]);
  rmSync(scratch, { recursive: true, force: true });
});

/** A process holding namespaces (unshare ARGS sleep), once it is in them. */
async function holder(args: string[], ns: string): Promise<{ p: ChildProcess; pid: number }> {
  const p = spawn('unshare', [...args, 'sleep', '1000'], { stdio: 'ignore' });
  const self = readlinkSync(`/proc/self/ns/${ns}`);
  for (let i = 0; i < 200; i++) {
    // With --fork, sleep is unshare's child.
    const kids = (() => {
      try {
        return readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch {
        return [];
      }
    })();
    const pid = args.includes('--fork') ? Number(kids[0]) : p.pid!;
    try {
      if (
        pid &&
        readlinkSync(`/proc/${pid}/ns/${ns}`) !== self &&
        readFileSync(`/proc/${pid}/comm`, 'utf8') === 'sleep\n'
      )
        return { p, pid };
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  p.kill('SIGKILL');
  throw new Error('unshare did not start');
}

describe.skipIf(!root)('nsbox-runtime and the runtime spec', () => {
  it("sets linux.rootfsPropagation on the container's / (shared, unbindable; private by default)", async () => {
    const tag = async (id: string, prop?: string) => {
      const { dir, out } = await bundle(
        id,
        ['sh', '-c', 'awk \'$5 == "/"\' /proc/self/mountinfo > /out/mi'],
        (c: Cfg) => {
          if (prop) c.linux.rootfsPropagation = prop;
        },
      );
      const r = await rt(['run', '--bundle', dir, id]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return readFileSync(`${out}/mi`, 'utf8');
    };
    expect(await tag('prop-rshared', 'rshared')).toMatch(/ shared:\d+ /);
    expect(await tag('prop-unbindable', 'unbindable')).toMatch(/ unbindable /);
    const plain = await tag('prop-none');
    expect(plain).not.toMatch(/shared:|unbindable/);
    expect(await tag('prop-slave', 'rslave')).not.toMatch(/shared:|master:|unbindable/);
  });

  it("sets a mount's own propagation option (shared, rshared, unbindable; private by default)", async () => {
    const id = 'prop-mounts';
    const src = mkdtempSync(join(tmpdir(), 'nsbox-oci-prop-'));
    try {
      const { dir, out } = await bundle(
        id,
        ['sh', '-c', "awk '$5 ~ /^\\/mnt\\//' /proc/self/mountinfo > /out/mi"],
        (c: Cfg) => {
          c.mounts.push(
            { destination: '/mnt/a', type: 'tmpfs', source: 'tmpfs', options: ['rshared'] },
            { destination: '/mnt/b', type: 'bind', source: src, options: ['rbind', 'unbindable'] },
            { destination: '/mnt/c', type: 'tmpfs', source: 'tmpfs', options: ['shared', 'private'] },
          );
        },
      );
      const r = await rt(['run', '--bundle', dir, id]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = readFileSync(`${out}/mi`, 'utf8').trim().split('\n');
      const of = (m: string) => lines.find((l) => l.split(' ')[4] === m) ?? '';
      expect(of('/mnt/a')).toMatch(/ shared:\d+ /);
      expect(of('/mnt/b')).toMatch(/ unbindable /);
      expect(of('/mnt/c')).not.toMatch(/shared:|unbindable/); // the last option wins, as mount(8) reads them
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('makes a time namespace with linux.timeOffsets (boottime and monotonic), entered at exec', async () => {
    const year = 365 * 24 * 3600;
    const { dir, out } = await bundle(
      'time-ns',
      ['sh', '-c', 'cat /proc/self/timens_offsets > /out/offsets; cat /proc/uptime > /out/uptime'],
      (c: Cfg) => {
        c.linux.namespaces.push({ type: 'time' });
        c.linux.timeOffsets = { boottime: { secs: year, nanosecs: 0 }, monotonic: { secs: 1000, nanosecs: 5 } };
      },
    );
    const r = await rt(['run', '--bundle', dir, 'time-ns']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const offsets = readFileSync(`${out}/offsets`, 'utf8').trim().split('\n');
    expect(offsets.map((l) => l.trim().split(/\s+/))).toEqual([
      ['monotonic', '1000', '5'],
      ['boottime', String(year), '0'],
    ]);
    // /proc/uptime is boottime in the reader's time namespace: a year on.
    expect(Number(readFileSync(`${out}/uptime`, 'utf8').split(' ')[0])).toBeGreaterThan(year);
    // Offsets without a time namespace are refused, naming the field, and leave nothing.
    const bad = await bundle('time-bad', ['true'], (c: Cfg) => {
      c.linux.timeOffsets = { boottime: { secs: 5, nanosecs: 0 } };
    });
    const rb = await rt(['create', '--bundle', bad.dir, 'time-bad']);
    expect(rb.code).not.toBe(0);
    expect(rb.stderr).toMatch(/linux\.timeOffsets: needs a new time namespace/);
    expect(existsSync(`${state}/time-bad`)).toBe(false);
  });

  it('runs the command in linux.personality LINUX32 (uname says i686); an unknown domain is refused', async () => {
    const { dir, out } = await bundle('pers', ['sh', '-c', 'uname -m > /out/m'], (c: Cfg) => {
      c.linux.personality = { domain: 'LINUX32' };
    });
    const r = await rt(['run', '--bundle', dir, 'pers']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(`${out}/m`, 'utf8').trim()).toMatch(/^i[3-6]86$/);
    const bad = await bundle('pers-bad', ['true'], (c: Cfg) => {
      c.linux.personality = { domain: 'SVR4' };
    });
    const rb = await rt(['create', '--bundle', bad.dir, 'pers-bad']);
    expect(rb.code).not.toBe(0);
    expect(rb.stderr).toMatch(/linux\.personality\.domain: unknown domain "SVR4"/);
    expect(existsSync(`${state}/pers-bad`)).toBe(false);
  });

  it("gives the command process.env alone, with HOME added when missing, as runc (no PATH or HOSTNAME of nsbox's)", async () => {
    const { dir, out } = await bundle('env-exact', ['sh', '-c', 'cat /proc/1/environ > /out/env; true'], (c: Cfg) => {
      c.process.env = ['A=1', 'B=two words'];
    });
    const r = await rt(['run', '--bundle', dir, 'env-exact']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // PID 1 is sh (`; true`: not replaced by cat): its environ is what exec gave it, before the shell's own.
    const env = readFileSync(`${out}/env`, 'utf8').split('\0').filter(Boolean);
    expect(env.sort()).toEqual(['A=1', 'B=two words', 'HOME=/root']);
  });

  it("makes an idmapped bind from a mount's uidMappings/gidMappings (a user namespace's maps, as runc)", async () => {
    const src = mkdtempSync(join(tmpdir(), 'nsbox-oci-idmap-'));
    try {
      chmodSync(src, 0o755);
      writeFileSync(`${src}/f`, 'x'); // root's on the host
      // Through a mount idmapped by "0 1000 1" host root's files are 1000's, and 1000 writes as root.
      const map = [{ containerID: 0, hostID: 1000, size: 1 }];
      const script = 'stat -c %u:%g /mnt/id/f /mnt/plain/f > /out/s; echo y > /mnt/id/g';
      const { dir, out } = await bundle('idmap', ['sh', '-c', script], (c: Cfg) => {
        c.process.user = { uid: 1000, gid: 1000 };
        c.mounts.push(
          { destination: '/mnt/id', type: 'bind', source: src, options: ['bind'], uidMappings: map, gidMappings: map },
          { destination: '/mnt/plain', type: 'bind', source: src, options: ['bind'] },
        );
      });
      const r = await rt(['run', '--bundle', dir, 'idmap']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(readFileSync(`${out}/s`, 'utf8')).toBe('1000:1000\n0:0\n');
      const st = statSync(`${src}/g`);
      expect([st.uid, st.gid]).toEqual([0, 0]);
      // rbind with mappings (recursive idmapping) is refused, naming the option, and leaves nothing.
      const bad = await bundle('idmap-bad', ['true'], (c: Cfg) => {
        c.mounts.push({
          destination: '/mnt/id',
          type: 'bind',
          source: src,
          options: ['rbind'],
          uidMappings: map,
          gidMappings: map,
        });
      });
      const rb = await rt(['create', '--bundle', bad.dir, 'idmap-bad']);
      expect(rb.code).not.toBe(0);
      expect(rb.stderr).toMatch(/recursive idmapped mounts are not supported/);
      expect(existsSync(`${state}/idmap-bad`)).toBe(false);
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('passes --preserve-fds N: fds 3..3+N-1 reach the command open, no others', async () => {
    const { dir, out } = await bundle('preserve', [
      'sh',
      '-c',
      'echo to-three >&3; echo to-four >&4; ls /proc/self/fd > /out/fds',
    ]);
    const [f3, f4] = [`${scratch}/fd3`, `${scratch}/fd4`];
    const fds = [openSync(f3, 'w'), openSync(f4, 'w')];
    try {
      const r = await rt(['run', '--preserve-fds', '2', '--bundle', dir, 'preserve'], { extra: fds });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    } finally {
      fds.forEach((fd) => closeSync(fd));
    }
    expect(readFileSync(f3, 'utf8')).toBe('to-three\n');
    expect(readFileSync(f4, 'utf8')).toBe('to-four\n');
    // ls's own directory fd besides 0-4.
    expect(
      readFileSync(`${out}/fds`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter((n) => n > 4).length,
    ).toBeLessThanOrEqual(1);
    const d = openSync(scratch, 'r');
    const bad = await rt(['create', '--preserve-fds', '1', '--bundle', dir, 'preserve-bad'], { extra: [d] });
    closeSync(d);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--preserve-fds 1: fd 3 is a directory/);
    expect(existsSync(`${state}/preserve-bad`)).toBe(false);
  });

  it('joins a mount namespace by path (the set-up is done in it, as runc does)', async () => {
    const hold = await holder(['--mount'], 'mnt');
    try {
      const { dir, out } = await bundle('mntns', ['sh', '-c', 'readlink /proc/self/ns/mnt > /out/ns'], (c: Cfg) => {
        c.linux.namespaces = c.linux.namespaces.map((n: Cfg) =>
          n.type === 'mount' ? { type: 'mount', path: `/proc/${hold.pid}/ns/mnt` } : n,
        );
      });
      const r = await rt(['run', '--bundle', dir, 'mntns']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(readFileSync(`${out}/ns`, 'utf8').trim()).toBe(readlinkSync(`/proc/${hold.pid}/ns/mnt`));
    } finally {
      hold.p.kill('SIGKILL');
    }
    expect(ourMounts()).toEqual([]);
    // A path of another type: the child's join fails, named, and create leaves nothing.
    const bad = await bundle('mntns-bad', ['true'], (c: Cfg) => {
      c.linux.namespaces = c.linux.namespaces.map((n: Cfg) =>
        n.type === 'mount' ? { type: 'mount', path: '/proc/self/ns/net' } : n,
      );
    });
    const r = await rt(['create', '--bundle', bad.dir, 'mntns-bad']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/join \/proc\/self\/ns\/net as the mount namespace: .*EINVAL/);
    expect(existsSync(`${state}/mntns-bad`)).toBe(false);
    expect(existsSync('/sys/fs/cgroup/pids/nsbox-runtime/mntns-bad')).toBe(false);
  });

  it('joins a user namespace (and its pid namespace) by path: the user one first, the new ones made in it', async () => {
    const hold = await holder(['--user', '--map-root-user', '--pid', '--fork'], 'user');
    try {
      const { dir, out } = await bundle(
        'userjoin',
        [
          'sh',
          '-c',
          '(readlink /proc/self/ns/user; readlink /proc/self/ns/pid) > /out/ns; cat /proc/self/uid_map >> /out/ns; id -u >> /out/ns',
        ],
        (c: Cfg) => {
          c.linux.namespaces = c.linux.namespaces
            .filter((n: Cfg) => n.type !== 'pid' && n.type !== 'cgroup')
            .concat([
              { type: 'user', path: `/proc/${hold.pid}/ns/user` },
              { type: 'pid', path: `/proc/${hold.pid}/ns/pid` },
            ]);
          delete c.linux.resources;
        },
      );
      const r = await rt(['run', '--bundle', dir, 'userjoin']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const [user, pid, map, uid] = readFileSync(`${out}/ns`, 'utf8').trim().split('\n');
      expect(user).toBe(readlinkSync(`/proc/${hold.pid}/ns/user`));
      expect(pid).toBe(readlinkSync(`/proc/${hold.pid}/ns/pid`));
      expect(map.trim().split(/\s+/)).toEqual(['0', '0', '1']);
      expect(uid).toBe('0');
    } finally {
      hold.p.kill('SIGKILL');
    }
    const bad = await bundle('userjoin-nopid', ['true'], (c: Cfg) => {
      c.linux.namespaces.push({ type: 'user', path: '/proc/self/ns/user' });
    });
    const r = await rt(['create', '--bundle', bad.dir, 'userjoin-nopid']);
    expect(r.stderr).toMatch(/pid namespace must be joined/);
    expect(existsSync(`${state}/userjoin-nopid`)).toBe(false);
  });

  it("makes linux.devices with their number, mode and owner (runtime-tools' set), FIFOs and subdirectories too", async () => {
    const { dir, out } = await bundle(
      'devs',
      [
        'sh',
        '-c',
        'stat -c "%n %F %t:%T %a %u:%g" /dev/test1 /dev/test2 /dev/test3 /dev/sub/null > /out/s; echo x > /dev/sub/null',
      ],
      (c: Cfg) => {
        c.linux.devices = [
          { path: '/dev/test1', type: 'c', major: 10, minor: 666, fileMode: 432, uid: 0, gid: 0 },
          { path: '/dev/test2', type: 'b', major: 8, minor: 666, fileMode: 432, uid: 0, gid: 0 },
          { path: '/dev/test3', type: 'p', major: 8, minor: 666, fileMode: 432 },
          { path: '/dev/sub/null', type: 'c', major: 1, minor: 3, fileMode: 0o606, uid: 1, gid: 2 },
        ];
      },
    );
    const r = await rt(['run', '--bundle', dir, 'devs']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(`${out}/s`, 'utf8').split('\n')).toEqual([
      '/dev/test1 character special file a:29a 660 0:0',
      '/dev/test2 block special file 8:29a 660 0:0',
      '/dev/test3 fifo 0:0 660 0:0',
      '/dev/sub/null character special file 1:3 606 1:2',
      '',
    ]);
  });

  it("nsbox ps lists the runtime's containers (NSBOX_RUNTIME_ROOT, or its default --root), marked oci", async () => {
    const { dir } = await bundle('listed', ['sleep', '1000']);
    expect((await rt(['create', '--bundle', dir, 'listed'])).code).toBe(0);
    try {
      const env = { ...process.env, NSBOX_RUNTIME_ROOT: state };
      const r = await collect(process.execPath, ['--', CLI, 'ps', '--format', 'json'], { env });
      expect(r.code).toBe(0);
      const rows = JSON.parse(r.stdout).filter((x: Cfg) => x.runtime === 'oci');
      expect(rows).toEqual([
        expect.objectContaining({ id: 'listed', name: 'listed', status: 'created', command: ['sleep', '1000'] }),
      ]);
      const t = await collect(process.execPath, ['--', CLI, 'ps', '--filter', 'status=created'], { env });
      expect(t.stdout).toMatch(/\nlisted +listed +\S+ +created +\d+/);
      // Its own state directory, no NSBOX_RUNTIME_ROOT: nsbox's containers only.
      const own = await collect(process.execPath, ['--', CLI, 'ps', '--format', 'json']);
      expect(JSON.parse(own.stdout).some((x: Cfg) => x.runtime === 'oci')).toBe(false);
    } finally {
      expect((await rt(['delete', '--force', 'listed'])).code).toBe(0);
    }
  });

  it('binds the terminal onto /dev/console when process.terminal is true (its master sent to --console-socket)', async () => {
    const sock = `${scratch}/console.sock`;
    const got = `${scratch}/console.out`;
    // A receiver of the master (SCM_RIGHTS; python3, as Node has no recvmsg), reading the terminal to its end.
    const py = [
      'import socket,sys,os',
      's=socket.socket(socket.AF_UNIX);s.bind(sys.argv[1]);s.listen(1);print("ready",flush=True)',
      'c,_=s.accept();_,fds,_,_=socket.recv_fds(c,16,1);out=b""',
      'while True:',
      '  try: d=os.read(fds[0],4096)',
      '  except OSError: break',
      '  if not d: break',
      '  out+=d',
      'open(sys.argv[2],"wb").write(out)',
    ].join('\n');
    const rx = spawn('python3', ['-c', py, sock, got], { stdio: ['ignore', 'pipe', 'inherit'] });
    const done = new Promise((res) => rx.on('exit', res)); // before it can end
    await new Promise((r) => rx.stdout!.once('data', r));
    const { dir } = await bundle(
      'console',
      ['sh', '-c', 'stat -c "%F %t" /dev/console; stat -L -c "%t:%T" /dev/console /proc/self/fd/0'],
      (c: Cfg) => {
        c.process.terminal = true;
      },
    );
    const r = await rt(['run', '--console-socket', sock, '--bundle', dir, 'console']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await done;
    const [kind, a, b] = readFileSync(got, 'utf8').trim().split(/\r?\n/);
    expect(kind).toBe('character special file 88');
    expect(a).toBe(b);
  });
});
