// The library: spawn/run with child_process ergonomics, enforced limits, many at once.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NsboxError, run, spawn } from '../dist/index.js';
import { expectNothingLeft, ROOTFS, snapshot } from './helpers.js';

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

const fdCount = () => readdirSync('/proc/self/fd').length;

describe('README examples', () => {
  const readme = readFileSync(resolve(__dirname, '..', 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  const dir = resolve(__dirname, '.examples');
  mkdirSync(dir, { recursive: true });
  it('has examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
  });
  blocks.forEach((code, i) => {
    it(`example ${i + 1} prints what its comments say`, () => {
      // Lines of the form `console.log(...);   // expected` state the output.
      const expected = [...code.matchAll(/\/\/ (.*)$/gm)].map((m) => m[1]);
      const file = resolve(dir, `example-${i + 1}.mjs`);
      writeFileSync(file, code);
      const out = execFileSync(process.execPath, [file], { encoding: 'utf8', cwd: dir });
      expect(out.trim().split('\n')).toEqual(expected);
    });
  });
});

describe('run', () => {
  it('feeds input and collects output and the exit code', async () => {
    const r = await run({ rootfs: ROOTFS, command: ['sh', '-c', 'cat; echo err >&2; exit 3'], input: 'hi\n' });
    expect(r).toMatchObject({
      stdout: 'hi\n',
      stderr: 'err\n',
      code: 3,
      signal: null,
      status: 'exited',
      oomKilled: false,
      timedOut: false,
    });
    expect(r.wallMs).toBeGreaterThan(0);
  });

  it('accepts a Buffer and a stream as input and returns Buffers', async () => {
    const { Readable } = await import('node:stream');
    const r1 = await run({ rootfs: ROOTFS, command: ['cat'], input: Buffer.from([1, 2, 3]), encoding: 'buffer' });
    expect([...r1.stdout]).toEqual([1, 2, 3]);
    const r2 = await run({ rootfs: ROOTFS, command: ['wc', '-c'], input: Readable.from(['ab', 'cd']) });
    expect(r2.stdout.trim()).toBe('4');
  });

  it('reports a signal', async () => {
    const sb = spawn({ rootfs: ROOTFS, command: ['sleep', '30'] });
    await new Promise((res) => sb.once('spawn', res));
    sb.kill('SIGKILL');
    expect(await sb.exited).toMatchObject({ code: null, signal: 'SIGKILL', status: 'signaled' });
  });

  it('kills the whole container at the wall-clock timeout', async () => {
    const r = await run({ rootfs: ROOTFS, command: ['sh', '-c', '(sleep 60 &) ; sleep 60'], timeoutMs: 300 });
    expect(r).toMatchObject({ status: 'timeout', timedOut: true, signal: 'SIGKILL' });
    expect(r.wallMs).toBeGreaterThanOrEqual(300);
  });

  it('enforces the CPU-time limit within 100 ms of it', async () => {
    const r = await run({ rootfs: ROOTFS, command: ['sh', '-c', 'while :; do :; done'], cpuTimeLimitMs: 400 });
    expect(r.status).toBe('cpu-limit');
    const used = r.cpu.userMs + r.cpu.systemMs;
    expect(used).toBeGreaterThanOrEqual(400);
    expect(used).toBeLessThan(500);
  });

  it('counts CPU time of grandchildren toward the limit', async () => {
    const r = await run({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'sh -c "while :; do :; done" & sh -c "while :; do :; done" & wait'],
      cpuTimeLimitMs: 400,
      timeoutMs: 5000,
    });
    expect(r.status).toBe('cpu-limit');
    expect(r.cpu.userMs + r.cpu.systemMs).toBeLessThan(600);
  });

  it('cuts output at maxOutputBytes without growing memory', async () => {
    const rssBefore = process.memoryUsage().rss;
    const r = await run({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'head -c 200000000 /dev/zero; echo done >&2'],
      maxOutputBytes: 1000,
    });
    expect(r.stdout.length).toBe(1000);
    expect(r.stderr).toBe('done\n');
    expect(r.outputTruncated).toBe(true);
    expect(r.status).toBe('ok');
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 1024 * 1024);
  });

  it('rejects with an AbortError when aborted', async () => {
    const ac = new AbortController();
    const p = run({ rootfs: ROOTFS, command: ['sleep', '30'], signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects a start failure with the step', async () => {
    await expect(run({ rootfs: ROOTFS, command: ['nosuch'] })).rejects.toThrow(
      'executable file not found in rootfs: nosuch',
    );
  });
});

describe('spec validation', () => {
  const bad: [string, object, RegExp][] = [
    ['rootfs', { rootfs: '/nonexistent', command: ['true'] }, /rootfs not found/],
    ['command', { rootfs: ROOTFS, command: [] }, /no command given/],
    ['timeoutMs', { rootfs: ROOTFS, command: ['true'], timeoutMs: 0 }, /^timeoutMs: /],
    ['cpuTimeLimitMs', { rootfs: ROOTFS, command: ['true'], cpuTimeLimitMs: 'x' }, /^cpuTimeLimitMs: /],
    ['stdio', { rootfs: ROOTFS, command: ['true'], stdio: ['pipe', 'bogus', 'pipe'] }, /^stdio: /],
    ['namespaces', { rootfs: ROOTFS, command: ['true'], namespaces: { mnt: false } }, /unknown namespace: mnt/],
    ['hostname', { rootfs: ROOTFS, command: ['true'], hostname: 'bad host' }, /invalid hostname/],
  ];
  for (const [field, spec, msg] of bad) {
    it(`names the field: ${field}`, () => {
      const fds = fdCount();
      let err: unknown;
      try {
        spawn(spec as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NsboxError);
      expect((err as NsboxError).message).toMatch(msg);
      expect((err as NsboxError).step).toBe(field);
      expect(fdCount()).toBe(fds);
    });
  }

  it("names the spec field, never the CLI's flag (the CLI says --cap-add, --uidmap, --user)", () => {
    const cases: [object, string, string][] = [
      [{ capAdd: ['SYS_FOO'] }, 'capAdd', 'capAdd: unknown capability: SYS_FOO'],
      [
        { userns: { uidMap: [{ container: 0, host: 1, size: 0 }] } },
        'userns.uidMap',
        'invalid userns.uidMap 0:1:0: size must be at least 1',
      ],
      [{ user: 'nosuchuser' }, 'user', `user: no user nosuchuser in ${ROOTFS}/etc/passwd`],
    ];
    for (const [extra, field, message] of cases) {
      let err: NsboxError | undefined;
      try {
        spawn({ rootfs: ROOTFS, command: ['true'], ...extra } as never);
      } catch (e) {
        err = e as NsboxError;
      }
      expect(err).toMatchObject({ field, kind: 'spec', message });
    }
  });
});

describe('spawn', () => {
  it('gives streams, a pid and events', async () => {
    const sb = spawn({ rootfs: ROOTFS, command: ['sh', '-c', 'read x; echo "got $x"; echo $$'] });
    const events: string[] = [];
    let pid = 0;
    // The clone runs off the JavaScript thread: the pid is known by 'spawn', as child_process has it.
    sb.on('spawn', () => {
      events.push('spawn');
      pid = sb.pid;
    });
    sb.on('exit', () => events.push('exit'));
    let out = '';
    sb.stdout!.on('data', (d) => (out += d));
    sb.stdin!.end('hey\n');
    const r = await sb.exited;
    await new Promise((res) => setImmediate(res));
    expect(out).toBe('got hey\n1\n');
    expect(r.status).toBe('ok');
    expect(events).toEqual(['spawn', 'exit']);
    expect(pid).toBeGreaterThan(1);
    expect(sb.pid).toBe(pid);
  });

  it('supports ignore, inherit and fds', async () => {
    const sb = spawn({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'ls -l /proc/self/fd/0 /proc/self/fd/1'],
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(sb.stdin).toBeNull();
    expect(sb.stderr).toBeNull();
    let out = '';
    sb.stdout!.on('data', (d) => (out += d));
    await sb.exited;
    await new Promise((res) => setImmediate(res));
    expect(out).toMatch(/0 -> \/dev\/null/);
  });

  it('takes stdio fds that are themselves 0-2, swapped', () => {
    // The sandbox's stdout goes to this script's stderr and the other way round: an earlier dup2
    // must not overwrite a source a later one needs.
    const file = resolve(__dirname, '.examples', 'swap-stdio.mjs');
    writeFileSync(
      file,
      `import { spawn } from 'nsbox';
      await spawn({ rootfs: ${JSON.stringify(ROOTFS)}, command: ['sh', '-c', 'echo out; echo err >&2'], stdio: ['ignore', 2, 1] }).exited;`,
    );
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
    expect(r.stdout).toBe('err\n');
    expect(r.stderr).toBe('out\n');
  });

  it('shares the host network namespace when asked', async () => {
    const r = await run({ rootfs: ROOTFS, command: ['readlink', '/proc/self/ns/net'], namespaces: { net: false } });
    expect(r.stdout.trim()).toBe(execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).trim());
    const r2 = await run({ rootfs: ROOTFS, command: ['readlink', '/proc/self/ns/net'] });
    expect(r2.stdout.trim()).not.toBe(r.stdout.trim());
  });

  it('runs 100 sandboxes at once and leaves no fd behind', async () => {
    const fds = fdCount();
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => run({ rootfs: ROOTFS, command: ['sh', '-c', `echo ${i}; exit ${i % 7}`] })),
    );
    results.forEach((r, i) => {
      expect(r.stdout).toBe(`${i}\n`);
      expect(r.code).toBe(i % 7);
    });
    expect(fdCount()).toBe(fds);
  });
});

describe('exec into a running sandbox, and the combined output cap', () => {
  it("sandbox.exec runs in the sandbox (its files, hostname, env, user) with run()'s input, caps and Result", async () => {
    const sb = spawn({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'echo hi > /tmp/x; echo up; sleep 60'],
      hostname: 'box',
      env: { A: '1' },
    });
    sb.stdout.setEncoding('utf8');
    await new Promise((r) => sb.stdout.once('data', r));
    const r = await sb.exec(['sh', '-c', 'cat /tmp/x; hostname; echo $A $B; id -u; read l; echo "got $l"; pwd'], {
      env: { B: '2' },
      input: 'abc\n',
      cwd: '/tmp',
    });
    expect(r).toMatchObject({ status: 'ok', code: 0, stdout: 'hi\nbox\n1 2\n0\ngot abc\n/tmp\n', stderr: '' });
    const t = await sb.exec(['sleep', '60'], { timeoutMs: 200 });
    expect(t).toMatchObject({ status: 'timeout', timedOut: true });
    await expect(sb.exec(['true'], { timeout: 5 } as never)).rejects.toThrow('unknown field timeout');
    sb.kill('SIGKILL');
    await sb.exited;
    await expect(sb.exec(['true'])).rejects.toThrow('not running any more');
  });

  it('maxTotalOutputBytes caps stdout and stderr together', async () => {
    const r = await run({
      rootfs: ROOTFS,
      command: ['sh', '-c', 'yes a | head -c 1000; yes b | head -c 1000 >&2'],
      maxTotalOutputBytes: 1500,
    });
    expect(r.stdout.length + r.stderr.length).toBe(1500);
    expect(r.outputTruncated).toBe(true);
  });

  it('init: true makes PID 1 the init, as --init does', async () => {
    const r = await run({ rootfs: ROOTFS, command: ['sh', '-c', 'cat /proc/1/comm; echo $$'], init: true });
    expect(r.stdout).toBe('init\n2\n');
  });
});
