// --init: PID 1 is the addon's reaper (OP_INIT), no extra binary: it reaps orphans, forwards
// signals and exits with the command's status.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli, lifecycleHooks, ok, ROOTFS, stateJson, until } from './util.js';

lifecycleHooks();

/** Zombies in the container, as its own ps sees them. */
async function zombies(name: string): Promise<string[]> {
  const out = await ok(['exec', name, 'ps', '-o', 'stat,comm']);
  return out
    .trim()
    .split('\n')
    .slice(1)
    .filter((l) => l.trim().startsWith('Z'));
}

describe('--init', () => {
  // The command orphans a child that ends: it is re-parented to PID 1. Without an init PID 1 is
  // `sleep`, which never waits, and the orphan stays a zombie.
  const ORPHANING = ['sh', '-c', '(sleep 0.1 &); (sleep 0.1 &); exec sleep 1000'];

  it('reaps orphaned grandchildren: no zombie', async () => {
    await ok(['run', '-d', '--init', '--name', 'reaped', ROOTFS, ...ORPHANING]);
    await ok(['run', '-d', '--name', 'control', ROOTFS, ...ORPHANING]);
    // The control shows the zombies appear (so the check is real) ...
    await until(async () => (await zombies('control')).length === 2, 'zombies without init');
    // ... and by then, with init, they were reaped.
    expect(await zombies('reaped')).toEqual([]);
    const ps = (await ok(['exec', 'reaped', 'ps', '-o', 'pid,comm']))
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/));
    expect(ps[0]).toEqual(['1', 'init']);
    expect(ps[1]).toEqual(['2', 'sleep']);
  });

  it('exits with the command status, and 128+N when it is killed by signal N', async () => {
    expect((await cli(['run', '--init', ROOTFS, 'sh', '-c', 'exit 7'])).code).toBe(7);
    expect((await cli(['run', '--init', ROOTFS, 'sh', '-c', 'kill -TERM $$'])).code).toBe(143);
    const r = await cli(['run', '--init', ROOTFS, 'sh', '-c', 'echo $$; cat /proc/1/comm']);
    expect(r.stdout).toBe('2\ninit\n');
  });

  it('forwards signals to the command (PID 1 of a namespace would ignore them)', async () => {
    const id = (
      await ok([
        'run',
        '-d',
        '--init',
        '--name',
        'sig',
        ROOTFS,
        'sh',
        '-c',
        'trap "echo got-usr1" USR1; while true; do sleep 0.1; done',
      ])
    ).trim();
    await ok(['kill', '-s', 'USR1', 'sig']);
    await until(async () => (await ok(['logs', 'sig'])) === 'got-usr1\n', 'the trap to run');
    await ok(['kill', '-s', 'TERM', 'sig']);
    await until(() => stateJson(id).status === 'stopped', 'it to stop');
    expect(stateJson(id).exit).toMatchObject({ code: 143 });
  });

  it('keeps the host out of PID 1: it is not dumpable and shows no host argv or environment', async () => {
    const id = (await ok(['run', '-d', '--init', '--name', 'priv', ROOTFS, 'sleep', '1000'])).trim();
    const pid = stateJson(id).pid;
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '')).toBe('init');
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8').replace(/\0/g, '')).toBe('');
    const out = await ok([
      'exec',
      'priv',
      'sh',
      '-c',
      'readlink /proc/1/exe || echo no-exe; cat /proc/1/environ || echo no-environ',
    ]);
    expect(out).toBe('no-exe\nno-environ\n');
  });
});
