// Many at once: 20 containers started, listed, exec'd into and removed concurrently; and
// commands racing on one container. The hooks check that no state entry, monitor, container
// process, mount or cgroup is left.
import { describe, expect, it } from 'vitest';
import { cli, lifecycleHooks, ok, ROOTFS, stateEntries } from './util.js';

lifecycleHooks();

const LOOP = ['sh', '-c', 'while true; do sleep 1; done'];

describe('20 containers at once', () => {
  it('start, list, exec and remove concurrently, leaving nothing', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `many-${i}`);
    // Started together; each then exec'd into and removed, while ps runs alongside.
    const lists: Promise<string>[] = [];
    const ids = await Promise.all(
      names.map(async (name, i) => {
        const id = (await ok(['run', '-d', '--name', name, ROOTFS, ...LOOP])).trim();
        if (i % 4 === 0) lists.push(ok(['ps', '--format', 'json']));
        return id;
      }),
    );
    expect(new Set(ids).size).toBe(20);
    const listed = JSON.parse(await ok(['ps', '--format', 'json']));
    expect(listed.map((c: { name: string }) => c.name).sort()).toEqual([...names].sort());
    for (const l of await Promise.all(lists)) expect(() => JSON.parse(l)).not.toThrow(); // never a torn state file
    await Promise.all(
      names.map(async (name) => {
        expect(await ok(['exec', name, 'hostname'])).toBe(`${name}\n`);
        const ps = await ok(['exec', name, 'ps', '-o', 'pid']);
        expect(ps.trim().split('\n').slice(1).map(Number)).toContain(1);
        expect(await ok(['rm', '-f', name])).toBe(`${name}\n`);
      }),
    );
    expect(await ok(['ps', '-aq'])).toBe('');
    expect(stateEntries()).toEqual({ ids: [], names: [] });
  });

  it('twenty racing claims of one name: exactly one wins', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => cli(['run', '-d', '--name', 'contested', ROOTFS, ...LOOP])),
    );
    const won = results.filter((r) => r.code === 0);
    expect(won).toHaveLength(1);
    for (const r of results.filter((x) => x.code !== 0))
      expect(r.stderr).toMatch(/^nsbox: the name "contested" is already in use by container [0-9a-f]{12}/);
    expect(stateEntries().ids).toEqual([won[0].stdout.trim()]);
  });

  it('exec, stop and rm -f racing on one container all end cleanly', async () => {
    await ok(['run', '-d', '--init', '--name', 'race', ROOTFS, ...LOOP]);
    const runs = [
      ...Array.from({ length: 6 }, () => cli(['exec', 'race', 'sleep', '0.2'])),
      cli(['stop', '-t', '1', 'race']),
      cli(['rm', '-f', 'race']),
      ...Array.from({ length: 4 }, () => cli(['exec', 'race', 'true'])),
    ];
    for (const r of await Promise.all(runs)) {
      // Each either did its work or says clearly that the container is gone.
      if (r.code !== 0)
        expect(r.stderr).toMatch(
          /^nsbox: (container race is not running|no such container: race|the container is not running any more)\n$|^$/,
        );
      expect(r.stderr).not.toMatch(/internal error/);
    }
  });
});
