// Detached containers and the commands on them: run -d, ps, inspect, top, logs, kill, stop, rm,
// stats; the state each step leaves; names; stale entries after a SIGKILL.
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alive, cli, lifecycleHooks, ok, ROOTFS, startCli, STATE, stateEntries, stateJson, until } from './util.js';

lifecycleHooks();

const LOOP = ['sh', '-c', 'echo started; while true; do sleep 1; done'];

async function runD(...args: string[]): Promise<string> {
  const out = await ok(['run', '-d', ...args]);
  expect(out).toMatch(/^[0-9a-f]{12}\n$/);
  return out.trim();
}

describe('run -d', () => {
  it('returns once the container runs, prints its id and records it as running', async () => {
    const id = await runD('--name', 'web', ROOTFS, ...LOOP);
    const st = stateJson(id);
    expect(st).toMatchObject({ id, name: 'web', status: 'running', detached: true, command: LOOP, rootfs: ROOTFS });
    expect(alive(st.pid)).toBe(true);
    expect(alive(st.monitor.pid)).toBe(true);
    // The monitor is the container's parent: the only nsbox process outside it.
    expect(readFileSync(`/proc/${st.pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]).toBe(String(st.monitor.pid));
    expect(readlinkSync(`${STATE}/names/web`)).toBe(id);
    expect(readdirSync(`${STATE}/${id}`).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('reports a set-up error like run, exits 127/125, and leaves nothing', async () => {
    const r = await cli(['run', '-d', '--name', 'bad', ROOTFS, 'no-such-command']);
    expect(r.code).toBe(127);
    expect(r.stderr).toBe('nsbox: executable file not found in rootfs: no-such-command\n');
    expect(r.stdout).toBe('');
    const r2 = await cli(['run', '-d', '/no/such/rootfs', 'true']);
    expect(r2.code).toBe(125);
    expect(r2.stderr).toMatch(/^nsbox: rootfs not found: \/no\/such\/rootfs\n$/);
    expect(stateEntries()).toEqual({ ids: [], names: [] });
  });

  it('refuses -i (there is nothing to attach to) and a bad --log-size', async () => {
    expect((await cli(['run', '-d', '-i', ROOTFS, 'true'])).stderr).toMatch(/^nsbox: -i needs an attached terminal/);
    const r = await cli(['run', '-d', '--log-size', '12x', ROOTFS, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^nsbox: invalid --log-size: 12x/);
  });

  it('keeps names unique while the container exists, and frees them on rm', async () => {
    const id = await runD('--name', 'web', ROOTFS, ...LOOP);
    const r = await cli(['run', '-d', '--name', 'web', ROOTFS, ...LOOP]);
    expect(r.code).toBe(125);
    expect(r.stderr).toBe(
      `nsbox: the name "web" is already in use by container ${id} (remove it with: nsbox rm web)\n`,
    );
    // A foreground run is refused too, before anything starts.
    const f = await cli(['run', '--name', 'web', ROOTFS, 'true']);
    expect(f.code).toBe(125);
    expect(stateEntries().ids).toEqual([id]);
    await ok(['stop', '-t', '0', 'web']);
    expect((await cli(['run', '-d', '--name', 'web', ROOTFS, 'true'])).code).toBe(125); // stopped still holds it
    await ok(['rm', 'web']);
    const id2 = await runD('--name', 'web', ROOTFS, ...LOOP);
    expect(id2).not.toBe(id);
  });

  it('--rm removes the container when it ends', async () => {
    const id = await runD('--rm', ROOTFS, 'sh', '-c', 'sleep 0.2');
    await until(() => !existsSync(`${STATE}/${id}`), 'the --rm container to go');
    expect(stateEntries()).toEqual({ ids: [], names: [] });
  });
});

describe('states', () => {
  it('goes running -> stopped with the exit status and times, and ps follows', async () => {
    const id = await runD('--name', 'short', ROOTFS, 'sh', '-c', 'exit 7');
    await until(() => stateJson(id).status === 'stopped', 'the container to stop');
    const st = stateJson(id);
    expect(st.exit).toEqual({ code: 7, signal: null, status: 7, oomKilled: false });
    expect(Date.parse(st.finishedAt)).toBeGreaterThanOrEqual(Date.parse(st.startedAt));
    expect(Date.parse(st.startedAt)).toBeGreaterThanOrEqual(Date.parse(st.createdAt));
    expect((await ok(['ps'])).trim().split('\n')).toHaveLength(1); // header only: stopped ones need -a
    const all = await ok(['ps', '-a']);
    expect(all).toMatch(new RegExp(`^${id}\\s+short\\s+\\S+\\s+stopped \\(exit 7\\)\\s+-\\s+`, 'm'));
  });

  it('records created (pid known, command not started) before running', async () => {
    // A probe part runs while the child waits at its sync step, after the tracker has recorded the pid.
    const { Container } = await import('../../dist/container.js');
    const { Tracker } = await import('../../dist/state/track.js');
    const { readState, removeEntry } = await import('../../dist/state/store.js');
    process.env.NSBOX_STATE_DIR = STATE;
    // This test process is the monitor here: the entry goes before the test ends, whatever happens.
    const t = new Tracker({
      rootfs: ROOTFS,
      command: ['true'],
      detached: false,
      autoRemove: false,
      init: false,
      tty: false,
      logLimit: 0,
    });
    try {
      expect(readState(t.id)!.status).toBe('creating');
      let seen: { status: string; pid: number } | null = null;
      const c = new Container({ rootfs: ROOTFS, command: ['true'], id: t.id }, [
        t.part(),
        {
          beforeRelease: () => {
            seen = readState(t.id);
          },
        },
      ]);
      expect(seen).toMatchObject({ status: 'created', pid: c.pid });
      await c.ready;
      t.running();
      expect(readState(t.id)!.status).toBe('running');
      const st = await c.exited;
      t.stopped(st);
      expect(readState(t.id)).toMatchObject({ status: 'stopped', exit: { code: 0 } });
      expect(await ok(['rm', t.id])).toBe(`${t.id}\n`);
    } finally {
      removeEntry(readState(t.id) ?? ({ id: t.id, name: t.name } as never));
      delete process.env.NSBOX_STATE_DIR;
    }
  });

  it('lists with --format json and -q', async () => {
    const a = await runD('--name', 'a', ROOTFS, ...LOOP);
    const b = await runD('--name', 'b', ROOTFS, ...LOOP);
    const list = JSON.parse(await ok(['ps', '--format', 'json']));
    expect(list.map((x: { id: string }) => x.id).sort()).toEqual([a, b].sort());
    expect(list[0]).toMatchObject({ status: 'running', command: LOOP, exit: null });
    expect(list[0].pid).toBeGreaterThan(1);
    expect((await ok(['ps', '-q'])).trim().split('\n').sort()).toEqual([a, b].sort());
    expect(JSON.parse(await ok(['list', '--format', 'json']))).toHaveLength(2);
    expect((await cli(['ps', '--format', 'yaml'])).stderr).toBe(
      "nsbox: invalid --format: yaml (table, json or a template such as '{{.Names}}')\n",
    );
  });
});

describe('inspect and top', () => {
  it('inspect shows the state and the namespaces of a running container', async () => {
    const id = await runD('--name', 'ins', ROOTFS, ...LOOP);
    const [st] = JSON.parse(await ok(['inspect', 'ins']));
    expect(st).toMatchObject({ id, name: 'ins', status: 'running', running: true, cwd: '/' });
    for (const ns of ['mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup']) {
      expect(st.namespaces[ns]).toBe(readlinkSync(`/proc/${st.pid}/ns/${ns}`));
      expect(st.namespaces[ns]).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
    }
    expect(st.env).toContain('HOSTNAME=ins');
    // By id prefix too; an unknown name is an error.
    expect(JSON.parse(await ok(['inspect', id.slice(0, 5)]))[0].id).toBe(id);
    const r = await cli(['inspect', 'nope']);
    expect(r.code).toBe(125);
    expect(r.stderr).toBe('nsbox: no such container: nope\n');
  });

  it('top lists the processes with host pids and pids inside', async () => {
    await runD('--name', 'top', ROOTFS, 'sh', '-c', 'sleep 1000 & sleep 1000 & wait');
    const st = JSON.parse(await ok(['inspect', 'top']))[0];
    await until(
      async () => (await ok(['top', 'top'])).split('\n').filter((l) => / sleep 1000$/.test(l)).length === 2,
      'both sleeps',
    );
    const rows = (await ok(['top', 'top']))
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    expect(rows[0]).toEqual(['PID', 'CPID', 'PPID', 'UID', 'STAT', 'STARTED', 'TIME', 'COMMAND']);
    const body = rows.slice(1);
    expect(body[0].slice(0, 2)).toEqual([String(st.pid), '1']);
    for (const r of body.slice(1)) {
      expect(r[7]).toBe('sleep');
      expect(Number(r[0])).not.toBe(Number(r[1])); // a host pid and a pid inside
      expect(readFileSync(`/proc/${r[0]}/status`, 'utf8')).toMatch(new RegExp(`^NSpid:\\s+${r[0]}\\s+${r[1]}$`, 'm'));
    }
    expect(body).toHaveLength(3);
  });
});

describe('logs', () => {
  it('keeps stdout and stderr, and --tail', async () => {
    const id = await runD('--name', 'log', ROOTFS, 'sh', '-c', 'echo one; echo two >&2; echo three');
    await until(() => stateJson(id).status === 'stopped', 'the container to stop');
    const all = await cli(['logs', 'log']);
    expect([all.stdout, all.stderr]).toEqual(['one\nthree\n', 'two\n']);
    const tail = await cli(['logs', '--tail', '2', 'log']);
    expect([tail.stdout, tail.stderr]).toEqual(['three\n', 'two\n']);
    expect(await ok(['logs', '-n', '0', 'log'])).toBe('');
  });

  it('caps the log: at most about twice --log-size, the newest output kept', async () => {
    const id = await runD(
      '--name',
      'big',
      '--log-size',
      '16k',
      ROOTFS,
      'sh',
      '-c',
      'i=0; while [ $i -lt 10000 ]; do echo "line $i"; i=$((i+1)); done',
    );
    await until(() => stateJson(id).status === 'stopped', 'the container to stop');
    const out = await ok(['logs', 'big']);
    // The cap counts the records (time, stream and text) in the files.
    const size = (f: string) => statSync(`${STATE}/${id}/${f}`).size;
    expect(size('log')).toBeLessThanOrEqual(16 * 1024);
    expect(size('log.1')).toBeLessThanOrEqual(16 * 1024);
    expect(size('log') + size('log.1')).toBeGreaterThan(16 * 1024);
    expect(out.endsWith('line 9999\n')).toBe(true);
    expect(out).not.toMatch(/^line 0$/m);
    const files = readdirSync(`${STATE}/${id}`).filter((f) => f.startsWith('log'));
    expect(files.sort()).toEqual(['log', 'log.1']);
  });

  it('-f follows new output across rotations until the container ends', async () => {
    const go = `/tmp/nsbox-go-${process.pid}`; // in the shared test rootfs: the container removes it
    await runD(
      '--name',
      'follow',
      '--log-size',
      '4k',
      ROOTFS,
      'sh',
      '-c',
      `echo first; while [ ! -e ${go} ]; do sleep 0.05; done; rm ${go}; i=0; while [ $i -lt 800 ]; do echo "n $i"; i=$((i+1)); [ $((i % 50)) = 0 ] && sleep 0.05; done; sleep 0.5; echo last`,
    );
    const f = startCli(['logs', '-f', 'follow']);
    let out = '';
    f.stdout!.on('data', (d) => (out += d));
    const done = new Promise((r) => f.on('close', r));
    await until(() => out.startsWith('first\n'), 'the log so far');
    await ok(['exec', 'follow', 'touch', go]);
    expect(await done).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines.at(-1)).toBe('last');
    // Every line is there once, in order, though the log rotated while followed. (The writer pauses
    // now and then: a follower more than two rotations behind would lose lines, as with docker's.)
    expect(lines.slice(1, -1)).toEqual(Array.from({ length: 800 }, (_, i) => `n ${i}`));
  });

  it('says a foreground container has no log', async () => {
    const p = startCli(['run', '--name', 'fg', ROOTFS, 'sleep', '100']);
    const closed = new Promise((r) => p.on('close', r));
    await until(
      async () => JSON.parse((await cli(['ps', '--format', 'json'])).stdout)[0]?.status === 'running',
      'the foreground container to run',
    );
    const r = await cli(['logs', 'fg']);
    expect(r.stderr).toBe('nsbox: container fg runs in the foreground: its output goes to its terminal\n');
    await ok(['kill', 'fg']);
    expect(await closed).toBe(137);
  });
});

describe('kill, stop, rm', () => {
  it('kill sends SIGKILL by default and -s another signal', async () => {
    const id = await runD('--name', 'k', '--init', ROOTFS, ...LOOP);
    await ok(['kill', '-s', 'USR1', 'k']);
    await until(() => stateJson(id).status === 'stopped', 'the container to stop');
    expect(stateJson(id).exit).toMatchObject({ code: 138 }); // init: the command's status (sh killed by SIGUSR1)
    const id2 = await runD('--name', 'k2', ROOTFS, ...LOOP);
    await ok(['kill', 'k2']);
    await until(() => stateJson(id2).status === 'stopped', 'the container to stop');
    expect(stateJson(id2).exit).toMatchObject({ code: null, signal: 'SIGKILL', status: 137 });
    const r = await cli(['kill', 'k2']);
    expect(r.code).toBe(125);
    expect(r.stderr).toBe('nsbox: container k2 is not running\n');
    expect((await cli(['kill', '-s', 'NOPE', 'k2'])).stderr).toBe('nsbox: invalid signal: NOPE\n');
  });

  it('stop: SIGTERM reaches a command under --init; a PID 1 that ignores it is killed after -t', async () => {
    const a = await runD('--name', 'polite', '--init', ROOTFS, ...LOOP);
    // Docker's behaviour: sh as PID 1 drops SIGTERM from outside (nsbox's own default ends it: test/lifecycle/signals).
    const b = await runD('--name', 'deaf', '--signals', 'docker', ROOTFS, ...LOOP);
    expect(await ok(['stop', '-t', '30', 'polite'])).toBe('polite\n');
    expect(stateJson(a)).toMatchObject({ status: 'stopped', exit: { code: 143 } });
    expect(await ok(['stop', '-t', '1', 'deaf'])).toBe('deaf\n');
    expect(stateJson(b)).toMatchObject({ status: 'stopped', exit: { signal: 'SIGKILL' } });
    expect(await ok(['stop', 'deaf'])).toBe('deaf\n'); // stopping a stopped one is fine
  });

  it('rm refuses a running container without -f, and rm -f kills and removes it', async () => {
    const id = await runD('--name', 'r', ROOTFS, ...LOOP);
    const pid = stateJson(id).pid;
    const r = await cli(['rm', 'r']);
    expect(r.code).toBe(125);
    expect(r.stderr).toBe('nsbox: container r is running: stop it first, or use rm -f\n');
    expect(alive(pid)).toBe(true);
    expect(await ok(['rm', '-f', 'r'])).toBe('r\n');
    expect(alive(pid)).toBe(false);
    expect(stateEntries()).toEqual({ ids: [], names: [] });
  });
});

describe('stats', () => {
  it('reports CPU, memory and pids of running containers', async () => {
    const id = await runD('--name', 'busy', ROOTFS, 'sh', '-c', 'sleep 1000 & while true; do :; done');
    const [s] = JSON.parse(await ok(['stats', '--no-stream', '--format', 'json', 'busy']));
    expect(s).toMatchObject({ id, name: 'busy' });
    expect(s.pids).toBeGreaterThanOrEqual(2);
    expect(s.memoryBytes).toBeGreaterThan(0);
    expect(s.cpuPercent).toBeGreaterThan(1); // a busy loop, over one second
    // With limits it has a cgroup of its own: usage and the limit come from there.
    const lim = await runD(
      '--name',
      'limited',
      '--memory',
      '64m',
      '--pids-limit',
      '50',
      ROOTFS,
      'sh',
      '-c',
      'sleep 1000 & sleep 1000 & wait',
    );
    const [l] = JSON.parse(await ok(['stats', '--no-stream', '--format', 'json', lim.slice(0, 6)]));
    expect(l).toMatchObject({ id: lim, name: 'limited', memoryLimitBytes: 64 * 2 ** 20, pids: 3 });
    expect(l.memoryBytes).toBeGreaterThan(0);
    const table = await ok(['stats', '--no-stream']);
    expect(table).toMatch(/ \/ 64\.0MiB /);
    expect(table.split('\n')[0]).toMatch(/^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+PIDS$/);
  });
});

describe('stale state', () => {
  it('a SIGKILLed monitor is detected: the container is gone, ps says why, rm cleans up', async () => {
    const id = await runD('--name', 'orphan', ROOTFS, ...LOOP);
    const st = stateJson(id);
    process.kill(st.monitor.pid, 'SIGKILL');
    await until(() => !alive(st.pid), 'the container to die with its monitor');
    const [row] = JSON.parse(await ok(['ps', '-a', '--format', 'json']));
    expect(row).toMatchObject({ id, status: 'stopped', error: 'the monitor process died; the container was killed' });
    expect((await ok(['ps'])).trim().split('\n')).toHaveLength(1);
    await ok(['rm', 'orphan']);
  });

  it('a --rm container whose monitor was SIGKILLed is removed by the next command', async () => {
    const id = await runD('--rm', ROOTFS, ...LOOP);
    process.kill(stateJson(id).monitor.pid, 'SIGKILL');
    await until(async () => (await ok(['ps', '-aq'])) === '', 'the stale entry to be cleaned');
    expect(stateEntries()).toEqual({ ids: [], names: [] });
  });

  it('a SIGKILLed foreground run leaves an entry that the next ps removes', async () => {
    const p = startCli(['run', '--name', 'fg', ROOTFS, 'sleep', '100']);
    const id = await until(() => stateEntries().ids[0], 'the entry');
    // The directory comes a moment before its state.json.
    await until(() => existsSync(`${STATE}/${id}/state.json`) && stateJson(id).status === 'running', 'running');
    const pid = stateJson(id).pid;
    p.kill('SIGKILL');
    await until(() => !alive(pid), 'the container to die with the CLI');
    expect(await ok(['ps', '-a'])).not.toMatch(/fg/);
    expect(stateEntries()).toEqual({ ids: [], names: [] });
    // And the name is free again.
    expect((await cli(['run', '--name', 'fg', ROOTFS, 'true'])).code).toBe(0);
  });
});
