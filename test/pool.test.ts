// SandboxPool: sandboxes held before exec, each given one command, then destroyed; and starts that do
// not block the event loop.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NsboxError, run, type Sandbox, SandboxPool, spawn } from '../dist/index.js';
import { stepText } from '../dist/plan/text.js';
import { expectNothingLeft, nsboxCgroups, ROOTFS, snapshot } from './helpers.js';

let before: ReturnType<typeof snapshot>;
const pools: SandboxPool[] = [];
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
  await expectNothingLeft(before);
});

const limits = { memory: '64m', pids: 64 };

function pool(size = 2, over: Record<string, unknown> = {}): SandboxPool {
  const p = new SandboxPool({ rootfs: ROOTFS, size, limits, hostname: 'box', ...over });
  pools.push(p);
  return p;
}

/** Until the pool holds `n` sandboxes (it refills in the background). */
async function held(p: SandboxPool, n: number): Promise<void> {
  for (let i = 0; i < 300 && p.idle < n; i++) await new Promise((r) => setTimeout(r, 20));
  expect(p.idle).toBe(n);
}

const poolDirs = () =>
  [tmpdir(), '/dev/shm'].filter(existsSync).flatMap((d) =>
    readdirSync(d)
      .filter((e) => e.startsWith('nsbox-pool-'))
      .map((e) => `${d}/${e}`),
  );

describe('SandboxPool', () => {
  it('runs commands in held sandboxes: output, input, exit codes, env and cwd per use', async () => {
    const p = pool(2, { env: { FROM: 'pool' } });
    await held(p, 2);
    const r = await p.run(['sh', '-c', 'read x; echo "got $x $FROM $USE"; pwd; echo err >&2; exit 3'], {
      input: 'hi\n',
      env: { USE: 'one' },
      cwd: '/etc',
    });
    expect(r).toMatchObject({ code: 3, status: 'exited', stdout: 'got hi pool one\n/etc\n', stderr: 'err\n' });
    const ok = await p.run(['echo', 'plain']);
    expect(ok).toMatchObject({ code: 0, status: 'ok', stdout: 'plain\n' });
    expect(ok.cpu.systemMs).toBeGreaterThanOrEqual(0);
    expect((await p.run(['pwd'])).stdout).toBe('/\n');
    const buf = await p.run(['printf', '\\001\\002'], { encoding: 'buffer' });
    expect([...buf.stdout]).toEqual([1, 2]);
  });

  it('spawn gives a Sandbox: streams, pid, events, kill', async () => {
    const p = pool(1);
    await held(p, 1);
    const sb = p.spawn(['sh', '-c', 'echo $$; exec sleep 30']);
    const events: string[] = [];
    sb.on('spawn', () => events.push(`spawn ${sb.pid > 1}`));
    sb.on('exit', (r) => events.push(`exit ${r.signal}`));
    let out = '';
    sb.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) sb.kill('SIGKILL');
    });
    const r = await sb.exited;
    await new Promise((res) => setImmediate(res));
    expect(out).toBe('1\n'); // PID 1 of its own PID namespace
    expect(r).toMatchObject({ status: 'signaled', signal: 'SIGKILL' });
    expect(events).toEqual(['spawn true', 'exit SIGKILL']);
  });

  it('a command that cannot run fails as in a fresh sandbox, and the next use works', async () => {
    const p = pool(2);
    await held(p, 2);
    const fresh = await run({ rootfs: ROOTFS, command: ['no-such-command'] }).catch((e) => e);
    const pooled = await p.run(['no-such-command']).catch((e) => e);
    expect(pooled).toBeInstanceOf(NsboxError);
    expect(pooled.message).toBe(fresh.message);
    expect(pooled).toMatchObject({ kind: 'step', code: 'ENOENT', exec: 'not-found', step: fresh.step });
    const freshCwd = await run({ rootfs: ROOTFS, command: ['true'], cwd: '/nowhere' }).catch((e) => e);
    const pooledCwd = await p.run(['true'], { cwd: '/nowhere' }).catch((e) => e);
    expect(pooledCwd.message).toBe(freshCwd.message);
    expect(pooledCwd.message).toMatch(/^chdir to \/nowhere: .*ENOENT/);
    const sb = p.spawn(['/etc/passwd']);
    const events: string[] = [];
    sb.on('error', (e) => events.push(e.message));
    await expect(sb.exited).rejects.toThrow(/permission denied: \/etc\/passwd is not executable/);
    expect(events).toHaveLength(1);
    expect((await p.run(['echo', 'still'])).stdout).toBe('still\n');
  });

  it('refuses bad specs and options with the field named', async () => {
    expect(() => new SandboxPool({ rootfs: ROOTFS, size: 0 })).toThrow(/size/);
    expect(() => new SandboxPool({ rootfs: ROOTFS, size: 1, command: ['x'] } as never)).toThrow(/command/);
    expect(() => new SandboxPool({ rootfs: ROOTFS, size: 1, limits: { memory: 'lots' } })).toThrow(/memory/);
    const p = pool(1);
    expect(() => p.spawn([])).toThrow(/command/);
    expect(() => p.spawn(['true'], { cwd: 'rel' })).toThrow(/cwd/);
    expect(() => p.spawn(['true'], { stdio: 'ignore' } as never)).toThrow(/stdio/);
    expect(() => p.spawn(['true'], { env: { 'A=B': 'x' } })).toThrow(/env/);
    await p.close();
    expect(() => p.spawn(['true'])).toThrow(/closed/);
  });

  it('refills in the background; close() destroys the idle ones and leaves nothing', async () => {
    const dirs = poolDirs();
    const p = pool(3);
    await held(p, 3);
    const pids = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length;
    for (let i = 0; i < 5; i++) expect((await p.run(['true'])).code).toBe(0);
    await held(p, 3);
    expect(readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length).toBeLessThan(pids + 3);
    // close() while some are being made: those are destroyed too.
    p.run(['true']).catch(() => {});
    await p.close();
    expect(p.idle).toBe(0);
    expect(poolDirs()).toEqual(dirs);
  });

  it('runs many at once, more than it holds', async () => {
    const p = pool(2);
    await held(p, 2);
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => p.run(['sh', '-c', `echo ${i}`])));
    expect(rs.map((r) => r.stdout)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}\n`));
  });

  it('is as isolated as a fresh sandbox: the same plan but for the hold, and nothing kept between uses', async () => {
    const p = pool(2);
    await held(p, 2);
    const lines = (sb: Sandbox) => {
      const steps = (sb as unknown as { container: { plan: { steps: { kind: string }[] } } }).container.plan.steps;
      // Only the ids and the numbers of the stdio pipes' fds may differ.
      const text = (s: unknown) =>
        stepText(s as never)
          .replaceAll(sb.id, 'ID')
          .replace(/^dup2 \d+/, 'dup2 FD');
      return steps.map((s) => ({ kind: s.kind, text: text(s) }));
    };
    // Past the second fill each plan is made from the first (src/plan/template.ts): uses until one is.
    const template = (p as unknown as { template: { made: number } }).template;
    for (let i = 0; i < 6 && template.made === 0; i++) {
      expect((await p.run(['true'])).code).toBe(0);
      await held(p, 2);
    }
    expect(template.made).toBeGreaterThan(0);
    const pooled = p.spawn(['true']);
    const fresh = spawn({ rootfs: ROOTFS, limits, hostname: 'box', command: ['true'] });
    const a = lines(pooled),
      b = lines(fresh);
    await Promise.all([pooled.exited, fresh.exited]);
    const HOLD = ['holdOpen', 'hold', 'heldChdir', 'heldExec'];
    expect(a.filter((s) => !HOLD.includes(s.kind))).toEqual(b.filter((s) => s.kind !== 'exec'));
    expect(a.filter((s) => HOLD.includes(s.kind)).map((s) => s.kind)).toEqual(HOLD);
    expect(b.filter((s) => s.kind === 'exec')).toHaveLength(1);
    // The hold sits after identity and no_new_privs, before the seccomp filter, as a fresh start's exec does.
    const kinds = a.map((s) => s.kind);
    expect(kinds.indexOf('hold')).toBeGreaterThan(kinds.lastIndexOf('setresuid'));
    expect(kinds.indexOf('hold')).toBeLessThan(kinds.indexOf('seccomp'));

    // From inside: its own namespaces, its limits, PID 1, and nothing left by the use before.
    const look =
      'for n in mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done; echo $$;' +
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null;' +
      'ls /dev/shm; echo secret > /dev/shm/left; touch /tmp/pool-test-$$';
    const one = (await p.run(['sh', '-c', look])).stdout.trim().split('\n');
    const two = (await p.run(['sh', '-c', look])).stdout.trim().split('\n');
    const host = ['mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup'].map((n) => readlinkSync(`/proc/self/ns/${n}`));
    for (let i = 0; i < 6; i++) {
      expect(one[i]).not.toBe(host[i]);
      expect(two[i]).not.toBe(host[i]);
      expect(one[i]).not.toBe(two[i]);
    }
    expect(one[6]).toBe('1');
    expect(one[7]).toBe(String(64 * 1024 * 1024));
    expect(one.length).toBe(8); // /dev/shm was empty
    expect(two.length).toBe(8); // and is again: the first use's file is gone with its sandbox
  });

  it('keeps the seccomp filter and no_new_privs of a fresh sandbox', async () => {
    const p = pool(1);
    await held(p, 1);
    const status = (await p.run(['cat', '/proc/self/status'])).stdout;
    const fresh = (await run({ rootfs: ROOTFS, limits, command: ['cat', '/proc/self/status'] })).stdout;
    const pick = (s: string) => s.split('\n').filter((l) => /^(NoNewPrivs|Seccomp|Cap\w+):/.test(l));
    expect(pick(status)).toEqual(pick(fresh));
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
  });

  it('holds with init (cloned as a copy, not vfork) and as another user', async () => {
    const p = pool(1, { init: true, user: '1000:1000' });
    await held(p, 1);
    const r = await p.run(['sh', '-c', 'echo $$ $(id -u); cat /proc/1/comm']);
    expect(r.stdout).toBe('2 1000\ninit\n');
  });

  it('reports OOM, CPU time and peak memory as a fresh run does; close() removes what the uses left', async () => {
    const p = pool(2);
    await held(p, 2);
    const burn = await p.run(['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done']);
    expect(burn).toMatchObject({ code: 0, status: 'ok', oomKilled: false });
    expect(burn.cpu.userMs + burn.cpu.systemMs).toBeGreaterThan(0);
    expect(burn.peakMemoryBytes).toBeGreaterThan(0);
    const oom = await p.run(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=100M', 'count=1']);
    expect(oom).toMatchObject({ code: null, signal: 'SIGKILL', status: 'oom', oomKilled: true });
    expect(oom.peakMemoryBytes).toBeGreaterThan(32 * 1024 * 1024);
    // The result comes before the used sandbox's cgroup is removed: close() waits for that.
    await p.close();
    expect(nsboxCgroups().filter((c) => !before.cgroups.includes(c))).toEqual([]);
  });

  it("kills what PID 1 left behind in the host's PID namespace before the result", async () => {
    const p = pool(1, { namespaces: { pid: false } });
    await held(p, 1);
    const r = await p.run(['sh', '-c', 'sleep 1000 & echo $!']);
    const pid = Number(r.stdout.trim());
    expect(pid).toBeGreaterThan(1);
    const alive = () =>
      existsSync(`/proc/${pid}`) && !/^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    for (let i = 0; i < 50 && alive(); i++) await new Promise((res) => setTimeout(res, 100));
    expect(alive()).toBe(false);
  });

  it('gives a large command and environment whole', async () => {
    const p = pool(1);
    await held(p, 1);
    const big = 'x'.repeat(100_000);
    const r = await p.run(['sh', '-c', 'printf %s "$BIG" | wc -c; printf %s "$1" | wc -c', 'sh', big], {
      env: { BIG: big },
    });
    expect(r.stdout.split(/\s+/).filter(Boolean)).toEqual(['100000', '100000']);
  });
});

describe('starts off the event loop', () => {
  it('clones on another thread: the pid comes later, and the loop turns meanwhile', async () => {
    let turns = 0,
      going = true;
    const tick = () => {
      turns++;
      if (going) setImmediate(tick);
    };
    setImmediate(tick);
    const sbs = Array.from({ length: 8 }, () => spawn({ rootfs: ROOTFS, limits, command: ['true'], stdio: 'ignore' }));
    // The clone's result is read on this thread: none can be known before it gets back to the loop.
    expect(sbs.map((s) => s.pid)).toEqual(Array(8).fill(0));
    const pids = await Promise.all(sbs.map((s) => new Promise<number>((res) => s.once('spawn', () => res(s.pid)))));
    const seen = turns;
    await Promise.all(sbs.map((s) => s.exited));
    going = false;
    expect(new Set(pids).size).toBe(8);
    expect(Math.min(...pids)).toBeGreaterThan(1);
    expect(seen).toBeGreaterThan(0);
  });

  it('a start that fails is an error on exited and the error event, not a throw', async () => {
    const sb = spawn({ rootfs: ROOTFS, command: ['no-such-command'], stdio: 'ignore' });
    const errors: Error[] = [];
    sb.on('error', (e) => errors.push(e));
    await expect(sb.exited).rejects.toThrow(/executable file not found in rootfs: no-such-command/);
    expect(errors).toHaveLength(1);
  });
});
