// nsbox-runtime's life cycle against bundles of the busybox rootfs (as root): create holds the
// container, start lets it go, kill and delete end it, and nothing is left behind.
import { spawn } from 'node:child_process';
import { readlinkSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, hostMounts, ROOTFS } from '../helpers.js';
import { type Cfg, harness, RUNTIME } from './harness.js';

const root = process.getuid?.() === 0;
// The scratch directory is reachable from a user namespace (volume sources are opened as its root).
const { scratch, state, rt: run, bundle } = harness('nsbox-oci-rt-');
/** Runs nsbox-runtime with --root to its exit, its output in files (harness.ts). */
const rt = (...args: string[]) => run(args);

const cgroupOf = (id: string) =>
  ['memory', 'pids', 'freezer', 'devices'].map((c) => `/sys/fs/cgroup/${c}/nsbox-runtime/${id}`);
/** Running (a zombie waiting for whoever adopted it to reap it counts as ended). */
const alive = (pid: number) => {
  try {
    return !/^[ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]);
  } catch {
    return false;
  }
};
const status = async (id: string) => JSON.parse((await rt('state', id)).stdout);

/** Host mounts of this test's files (others' tests come and go on a shared host). */
const ourMounts = () => hostMounts().filter((m) => m.startsWith(scratch) || m.startsWith(ROOTFS));
beforeAll(async () => {
  const r = await collect(RUNTIME, ['spec'], { cwd: scratch });
  expect(r.code).toBe(0);
  writeFileSync(`${scratch}/template.json`, readFileSync(`${scratch}/config.json`));
});

afterAll(async () => {
  for (const id of existsSync(state) ? readdirSync(state) : []) await rt('delete', '--force', id);
  rmSync(scratch, { recursive: true, force: true });
});

describe.skipIf(!root)('nsbox-runtime', () => {
  it('spec writes a config.json and refuses to overwrite one', async () => {
    const c = JSON.parse(readFileSync(`${scratch}/config.json`, 'utf8'));
    expect(c.ociVersion).toMatch(/^1\./);
    expect(c.process.args).toEqual(['sh']);
    const again = await collect(RUNTIME, ['spec'], { cwd: scratch });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/exists/);
  });

  it('create holds, start runs, kill stops, delete leaves nothing', async () => {
    const { dir, out } = bundle('life', ['sh', '-c', 'echo started > /out/f; exec sleep 1000']);
    const pidFile = `${scratch}/life.pid`;
    const c = await rt('create', '--bundle', dir, '--pid-file', pidFile, 'life');
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    const st = await status('life');
    expect(st).toMatchObject({ ociVersion: '1.0.2', id: 'life', status: 'created', bundle: dir, annotations: {} });
    expect(st.pid).toBe(Number(readFileSync(pidFile, 'utf8')));
    expect(alive(st.pid)).toBe(true);
    expect(existsSync(`${out}/f`)).toBe(false); // held before exec: the command has not run
    for (const d of cgroupOf('life')) expect(existsSync(d)).toBe(true);

    expect((await rt('start', 'life')).code).toBe(0);
    for (let i = 0; i < 200 && !existsSync(`${out}/f`); i++) await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(`${out}/f`, 'utf8')).toBe('started\n');
    expect(await status('life')).toMatchObject({ status: 'running', pid: st.pid });
    const ps = await rt('ps', '--format', 'json', 'life');
    expect(JSON.parse(ps.stdout)).toEqual([st.pid]);
    expect((await rt('list', '-q')).stdout).toBe('life\n');

    expect((await rt('kill', 'life', 'KILL')).code).toBe(0);
    for (let i = 0; i < 200 && alive(st.pid); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await status('life')).toMatchObject({ status: 'stopped', pid: 0 });
    const k = await rt('kill', 'life', '9');
    expect(k.code).not.toBe(0);
    expect(k.stderr).toMatch(/not running/);

    expect((await rt('delete', 'life')).code).toBe(0);
    expect(existsSync(`${state}/life`)).toBe(false);
    expect(alive(st.pid)).toBe(false);
    for (const d of cgroupOf('life')) expect(existsSync(d)).toBe(false);
    expect(ourMounts()).toEqual([]);
    const gone = await rt('state', 'life');
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/does not exist/);
  });

  it('refuses a second start, and delete of a running container without --force', async () => {
    const { dir } = bundle('twice', ['sleep', '1000']);
    expect((await rt('create', '--bundle', dir, 'twice')).code).toBe(0);
    const { pid } = await status('twice');
    expect((await rt('start', 'twice')).code).toBe(0);
    const again = await rt('start', 'twice');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/running, not created/);
    const del = await rt('delete', 'twice');
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/running/);
    expect(alive(pid)).toBe(true);
    expect((await rt('delete', '--force', 'twice')).code).toBe(0);
    expect(existsSync(`${state}/twice`)).toBe(false);
    for (const d of cgroupOf('twice')) expect(existsSync(d)).toBe(false);
  });

  it('exec runs in the container as it does, from arguments or a process.json', async () => {
    const { dir, out } = bundle('ex', ['sleep', '1000'], (c) => (c.process.user = { uid: 1000, gid: 1000 }));
    expect((await rt('create', '--bundle', dir, 'ex')).code).toBe(0);
    expect((await rt('start', 'ex')).code).toBe(0);
    const a = await rt('exec', '-e', 'X=1', 'ex', 'sh', '-c', 'echo $X $(id -u) $(hostname) > /out/a; exit 4');
    expect(a.code).toBe(4);
    expect(readFileSync(`${out}/a`, 'utf8')).toBe('1 1000 nsbox\n');
    writeFileSync(
      `${scratch}/p.json`,
      JSON.stringify({
        args: ['sh', '-c', 'pwd > /out/b; id -u >> /out/b'],
        cwd: '/tmp',
        env: ['PATH=/bin'],
        user: { uid: 0, gid: 0 },
      }),
    );
    const pid = `${scratch}/ex.pid`;
    expect((await rt('exec', '--process', `${scratch}/p.json`, '--pid-file', pid, 'ex')).code).toBe(0);
    expect(readFileSync(`${out}/b`, 'utf8')).toBe('/tmp\n0\n');
    expect(Number(readFileSync(pid, 'utf8'))).toBeGreaterThan(0);
    expect((await rt('delete', '--force', 'ex')).code).toBe(0);
    const gone = await rt('exec', 'ex', 'true');
    expect(gone.stderr).toMatch(/does not exist/);
  });

  it('pauses and resumes with the freezer', async () => {
    const { dir } = bundle('frz', ['sleep', '1000']);
    expect((await rt('create', '--bundle', dir, 'frz')).code).toBe(0);
    expect((await rt('start', 'frz')).code).toBe(0);
    expect((await rt('pause', 'frz')).code).toBe(0);
    expect((await status('frz')).status).toBe('paused');
    expect((await rt('resume', 'frz')).code).toBe(0);
    expect((await status('frz')).status).toBe('running');
    expect((await rt('delete', '--force', 'frz')).code).toBe(0);
  });

  it('run passes the exit code through and removes the container', async () => {
    const { dir } = bundle('exit3', ['sh', '-c', 'exit 3']);
    const r = await rt('run', '--bundle', dir, 'exit3');
    expect(r.code).toBe(3);
    expect(existsSync(`${state}/exit3`)).toBe(false);
  });

  it('applies the config: user, env, cwd, hostname, read-only root, capabilities, mounts', async () => {
    const { dir, out } = bundle(
      'cfg',
      [
        'sh',
        '-c',
        'id -u > /out/id; id -g >> /out/id; echo "$FOO" > /out/env; pwd > /out/cwd; hostname > /out/host; ' +
          'touch /x 2>/dev/null && echo rw > /out/ro || echo ro > /out/ro; ' +
          'grep CapEff /proc/self/status > /out/caps; ' +
          'grep " /out " /proc/self/mountinfo > /out/mnt; umask > /out/umask',
      ],
      (c) => {
        c.process.user = { uid: 1000, gid: 1000, umask: 0o27 };
        c.process.env.push('FOO=bar');
        c.process.cwd = '/tmp';
        c.hostname = 'oci-host';
        c.mounts.find((m: Cfg) => m.destination === '/out').options.push('nosuid', 'noexec');
      },
    );
    const r = await rt('run', '--bundle', dir, 'cfg');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const read = (f: string) => readFileSync(`${out}/${f}`, 'utf8').trim();
    expect(read('id')).toBe('1000\n1000');
    expect(read('env')).toBe('bar');
    expect(read('cwd')).toBe('/tmp');
    expect(read('host')).toBe('oci-host');
    expect(read('ro')).toBe('ro');
    // AUDIT_WRITE, KILL, NET_BIND_SERVICE are raised for a non-root user only when ambient: none here
    expect(read('caps')).toMatch(/CapEff:\s+0000000000000000/);
    expect(read('mnt')).toMatch(/nosuid.*noexec|noexec.*nosuid/);
    expect(read('umask')).toBe('0027');
  });

  it('a bad config fails create with the JSON path and leaves nothing', async () => {
    const { dir } = bundle('bad', ['true'], (c) => c.mounts.push({ destination: '/x', type: 'nfs', source: 'h:/x' }));
    const r = await rt('create', '--bundle', dir, 'bad');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/\$\.mounts\[\d+\]\.type/);
    expect(existsSync(`${state}/bad`)).toBe(false);
    for (const d of cgroupOf('bad')) expect(existsSync(d)).toBe(false);
    // a failing set-up step (the command's cwd is a file): reported, nothing left
    const b2 = bundle('bad2', ['true'], (c) => (c.process.cwd = '/etc/passwd'));
    const r2 = await rt('create', '--bundle', b2.dir, 'bad2');
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/chdir/);
    expect(existsSync(`${state}/bad2`)).toBe(false);
    for (const d of cgroupOf('bad2')) expect(existsSync(d)).toBe(false);
    expect(ourMounts()).toEqual([]);
  });

  it('runs hooks in order with the state on stdin, and fails create when a createRuntime hook fails', async () => {
    const log = `${scratch}/hooks.log`;
    const hook = (kind: string, extra = '') => ({
      path: '/bin/sh',
      args: ['sh', '-c', `echo ${kind} $(grep -o '"status":"[a-z]*"') >> ${log}${extra}`],
    });
    // In the container's namespaces: its hostname; startContainer's path and files are the container's.
    const inside = (kind: string, file: string) => ({
      path: '/bin/sh',
      args: ['sh', '-c', `echo ${kind} $(hostname) $(grep -o '"status":"[a-z]*"') >> ${file}`],
    });
    const { dir, out } = bundle(
      'hooks',
      ['sleep', '1000'],
      (c) =>
        (c.hooks = {
          prestart: [hook('prestart')],
          createRuntime: [hook('createRuntime')],
          createContainer: [inside('createContainer', log)],
          startContainer: [inside('startContainer', '/out/start')],
          poststart: [hook('poststart')],
          poststop: [hook('poststop'), hook('poststop-fails', '; exit 1')],
        }),
    );
    expect((await rt('create', '--bundle', dir, 'hooks')).code).toBe(0);
    expect((await rt('start', 'hooks')).code).toBe(0);
    const del = await rt('delete', '--force', 'hooks');
    expect(del.code).toBe(0);
    expect(del.stderr).toMatch(/warning: poststop hook \/bin\/sh failed: exit status 1/);
    expect(readFileSync(log, 'utf8')).toBe(
      'prestart "status":"created"\ncreateRuntime "status":"created"\ncreateContainer nsbox "status":"created"\n' +
        'poststart "status":"running"\npoststop "status":"stopped"\npoststop-fails "status":"stopped"\n',
    );
    expect(readFileSync(`${out}/start`, 'utf8')).toBe('startContainer nsbox "status":"created"\n');

    const bad = bundle(
      'hookfail',
      ['sleep', '1000'],
      (c) =>
        (c.hooks = {
          createRuntime: [{ path: '/bin/sleep', args: ['sleep', '10'], timeout: 1 }],
        }),
    );
    const r = await rt('create', '--bundle', bad.dir, 'hookfail');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/createRuntime hook \/bin\/sleep failed: timed out after 1s/);
    expect(existsSync(`${state}/hookfail`)).toBe(false);
    for (const d of cgroupOf('hookfail')) expect(existsSync(d)).toBe(false);
  });

  it('joins a network namespace by path (as podman gives its netns)', async () => {
    const holder = spawn('unshare', ['--net', 'sleep', '1000'], { stdio: 'ignore' });
    try {
      for (
        let i = 0;
        i < 100 && readlinkSync(`/proc/${holder.pid}/ns/net`) === readlinkSync('/proc/self/ns/net');
        i++
      ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const { dir, out } = bundle('netns', ['sh', '-c', 'readlink /proc/self/ns/net > /out/ns'], (c) => {
        c.linux.namespaces = c.linux.namespaces.map((n: Cfg) =>
          n.type === 'network' ? { type: 'network', path: `/proc/${holder.pid}/ns/net` } : n,
        );
        c.linux.sysctl = { 'net.ipv4.ping_group_range': '0 0' };
      });
      const r = await rt('run', '--bundle', dir, 'netns');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(readFileSync(`${out}/ns`, 'utf8').trim()).toBe(readlinkSync(`/proc/${holder.pid}/ns/net`));
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it("runs in a user namespace with the config's maps (the hold FIFO is the mapped root's)", async () => {
    const { dir, out } = bundle('userns', ['sh', '-c', 'cat /proc/self/uid_map > /out/map; id -u >> /out/map'], (c) => {
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
    });
    const r = await rt('run', '--bundle', dir, 'userns');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(`${out}/map`, 'utf8').replace(/\s+/g, ' ').trim()).toBe('0 300000 65536 0');
  });

  it("installs the config's seccomp profile: SCMP_ACT_ERRNO with errnoRet, argument conditions", async () => {
    const { dir, out } = bundle(
      'seccomp',
      [
        'sh',
        '-c',
        'mkdir /tmp/d 2>/out/mkdir; echo $? >> /out/mkdir; ' +
          'trap "" USR1; kill -0 $$; echo $? > /out/kill; kill -USR1 $$; echo $? >> /out/kill',
      ],
      (c) => {
        c.linux.seccomp = {
          defaultAction: 'SCMP_ACT_ALLOW',
          architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'],
          syscalls: [
            { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 30 }, // EROFS
            {
              names: ['kill'],
              action: 'SCMP_ACT_ERRNO',
              errnoRet: 1,
              args: [{ index: 1, value: 10, op: 'SCMP_CMP_EQ' }],
            },
          ],
        };
      },
    );
    const r = await rt(
      '--log',
      `${scratch}/seccomp.log`,
      '--log-format',
      'json',
      '--debug',
      'run',
      '--bundle',
      dir,
      'seccomp',
    );
    expect(r.code).toBe(0);
    expect(readFileSync(`${out}/mkdir`, 'utf8')).toMatch(/Read-only file system\n1\n$/);
    expect(readFileSync(`${out}/kill`, 'utf8')).toBe('0\n1\n'); // signal 0 allowed, SIGUSR1 (10) refused
    const lines = readFileSync(`${scratch}/seccomp.log`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ level: 'debug', msg: expect.stringMatching(/^run --bundle/) });
  });

  it("gives linux.devices (made by number), under a devices cgroup that is the container's own", async () => {
    const { dir, out } = bundle('dev', ['sh', '-c', 'echo x > /dev/mynull && echo ok > /out/dev; sleep 1000'], (c) => {
      c.linux.devices = [{ path: '/dev/mynull', type: 'c', major: 1, minor: 3 }];
      c.linux.resources.devices.push({ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
      c.linux.resources.devices.push({ allow: true, type: 'b', major: 8, minor: 666, access: 'r' });
      for (const k of ['bounding', 'effective', 'permitted']) c.process.capabilities[k].push('CAP_SYS_ADMIN');
    });
    expect((await rt('create', '--bundle', dir, 'dev')).code).toBe(0);
    expect((await rt('start', 'dev')).code).toBe(0);
    for (let i = 0; i < 1000 && !existsSync(`${out}/dev`); i++) await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(`${out}/dev`, 'utf8')).toBe('ok\n');
    const own = '/sys/fs/cgroup/devices/nsbox-runtime/dev';
    if (existsSync('/sys/fs/cgroup/devices'))
      expect(readFileSync(`${own}/devices.list`, 'utf8')).toMatch(/c 1:3 rwm[\s\S]*b 8:666 r\n/);
    expect((await rt('delete', '--force', 'dev')).code).toBe(0);
    expect(existsSync(own)).toBe(false);
  });

  it('an unknown id: "does not exist"', async () => {
    for (const cmd of [['state'], ['start'], ['kill'], ['delete'], ['pause'], ['ps']]) {
      const r = await rt(...cmd, 'nope');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/does not exist/);
    }
  });
});
