// A container behaves like the process it is: a signal PID 1 has no handler for ends it (the kernel
// would drop it for a namespace's init), one it handles reaches it, and --signals docker keeps
// Docker's behaviour. Through the CLI (foreground, kill, stop) and the library.
import { describe, expect, it } from 'vitest';
import { run, spawn } from '../../dist/index.js';
import { cli, lifecycleHooks, ok, ROOTFS, startCli, stateJson, until } from './util.js';

lifecycleHooks();

const ended = (p: ReturnType<typeof startCli>) =>
  new Promise<{ code: number | null; stderr: string }>((res) => {
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    p.on('close', (code) => res({ code, stderr }));
  });
// Running (not just listed while it is made): the CLI forwards signals from then on.
const listed = (name: string) =>
  until(
    async () => /running/.test((await ok(['ps'])).split('\n').find((l) => l.includes(name)) ?? ''),
    `${name} to run`,
  );

describe('the CLI in the foreground', () => {
  it('SIGTERM and SIGINT end a PID 1 without a handler: 143 and 130', async () => {
    for (const [sig, status] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      const p = startCli(['run', '--name', `fg-${status}`, ROOTFS, 'sleep', '1000']);
      const done = ended(p);
      await listed(`fg-${status}`);
      p.kill(sig);
      expect((await done).code).toBe(status);
    }
  });

  it('a PID 1 that handles the signal gets it and decides', async () => {
    const p = startCli([
      'run',
      '--name',
      'trap',
      ROOTFS,
      'sh',
      '-c',
      'trap "exit 3" TERM; echo ready; while :; do sleep 1; done',
    ]);
    const done = ended(p);
    await listed('trap');
    await until(() => p.stdout!.read()?.toString().includes('ready'), 'the trap to be set');
    p.kill('SIGTERM');
    expect((await done).code).toBe(3);
  });

  it('--signals docker: PID 1 ignores what it has no handler for, as in Docker', async () => {
    const p = startCli(['run', '--name', 'dock', '--signals', 'docker', ROOTFS, 'sh', '-c', 'read x; echo after']);
    const done = ended(p);
    await listed('dock');
    p.kill('SIGTERM');
    p.stdin!.end('go\n');
    expect((await done).code).toBe(0);
    expect((await cli(['run', '--signals', 'bogus', ROOTFS, 'true'])).stderr).toBe(
      'nsbox: invalid --signals: bogus (one of process, docker)\n',
    );
  });
});

describe('kill and stop', () => {
  it('kill -s TERM ends a detached container and it is recorded as killed by SIGTERM', async () => {
    const id = (await ok(['run', '-d', ROOTFS, 'sleep', '1000'])).trim();
    await ok(['kill', '-s', 'TERM', id]);
    await until(() => stateJson(id).status === 'stopped', 'the container to stop');
    expect(stateJson(id).exit).toMatchObject({ signal: 'SIGTERM', status: 143 });
    await ok(['rm', id]);
  });

  it('stop ends a plain PID 1 with SIGTERM, and says when it falls back to SIGKILL', async () => {
    const id = (await ok(['run', '-d', ROOTFS, 'sleep', '1000'])).trim();
    const r = await cli(['stop', '-t', '30', id]);
    expect(r.stderr).toBe('');
    expect(stateJson(id).exit).toMatchObject({ signal: 'SIGTERM' });
    const stubborn = (await ok(['run', '-d', ROOTFS, 'sh', '-c', 'trap "" TERM; while :; do sleep 1; done'])).trim();
    await until(async () => (await ok(['top', stubborn])).includes('sleep'), 'the trap to be set');
    const s = await cli(['stop', '-t', '1', stubborn]);
    expect(s.stderr).toMatch(/did not stop within 1 s of SIGTERM: sent SIGKILL/);
    expect(stateJson(stubborn).exit).toMatchObject({ signal: 'SIGKILL', status: 137 });
    await ok(['rm', id, stubborn]);
  });
});

describe('the library', () => {
  it('kill() with its default SIGTERM ends a sandbox whose PID 1 has no handler', async () => {
    const sb = spawn({ rootfs: ROOTFS, command: ['sleep', '1000'], stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    expect(sb.kill()).toBe(true);
    const r = await sb.exited;
    expect(r).toMatchObject({ status: 'signaled', signal: 'SIGTERM', code: null });
  });

  it("signals: 'docker' keeps PID 1's immunity", async () => {
    const sb = spawn({ rootfs: ROOTFS, command: ['sh', '-c', 'sleep 1; echo alive'], signals: 'docker' });
    let out = '';
    sb.stdout!.setEncoding('utf8');
    sb.stdout!.on('data', (d: string) => (out += d));
    await new Promise((r) => setTimeout(r, 100));
    expect(sb.kill('SIGTERM')).toBe(true);
    expect((await sb.exited).status).toBe('ok');
    expect(out).toBe('alive\n');
    const bad = run({ rootfs: ROOTFS, command: ['true'], signals: 'nope' as 'docker' });
    await expect(bad).rejects.toThrow('signals must be one of process, docker');
  });
});
