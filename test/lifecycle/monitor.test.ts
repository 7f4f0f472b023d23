// The native monitor of detached containers (native/monitor.c): what it costs, what it records, its log
// format as `logs` reads it, and what happens when it is killed.
import { readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hierarchies } from '../../src/cgroups/hierarchy.js';
import { alive, cli, lifecycleHooks, ok, ourMonitors, ROOTFS, STATE, stateEntries, stateJson, until } from './util.js';

lifecycleHooks();

async function runD(...args: string[]): Promise<string> {
  const out = await ok(['run', '-d', ...args]);
  expect(out).toMatch(/^[0-9a-f]{12}\n$/);
  return out.trim();
}

const stopped = (id: string) => until(() => stateJson(id).status === 'stopped', 'the container to stop');

/** VmRSS of a process, in kB. */
function rssKb(pid: number): number {
  return Number(/^VmRSS:\s*(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** Processes whose command line mentions the container id (a Node step of it still running). */
function nodeStepsOf(id: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
        return argv.includes('nsbox-setup') || (argv.includes('nsbox-cleanup') && argv.includes(id));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('the monitor', () => {
  it('is a small native process, the only one of nsbox beside a running container', async () => {
    const id = await runD('--name', 'small', ROOTFS, 'sleep', '1000');
    const st = stateJson(id);
    expect(ourMonitors()).toEqual([st.monitor.pid]);
    expect(readFileSync(`/proc/${st.monitor.pid}/comm`, 'utf8')).toBe('nsbox-monitor\n');
    expect(rssKb(st.monitor.pid)).toBeLessThan(2048);
    // The container is its child; the set-up step is gone.
    expect(readFileSync(`/proc/${st.pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]).toBe(String(st.monitor.pid));
    await until(() => nodeStepsOf(id).length === 0, 'the set-up step to exit');
    await ok(['rm', '-f', 'small']);
  });

  it('records the exit status and end, and an OOM kill', async () => {
    const id = await runD(ROOTFS, 'sh', '-c', 'exit 7');
    await stopped(id);
    const st = stateJson(id);
    expect(st.exit).toEqual({ code: 7, signal: null, status: 7, oomKilled: false });
    expect(Date.parse(st.finishedAt)).toBeGreaterThanOrEqual(Date.parse(st.startedAt));
    expect(readFileSync(`${STATE}/${id}/exit`, 'utf8')).toMatch(/^\{"status":1792,"finishedAt":"[^"]+Z",/);
    if (!hierarchies().byController.memory) return; // no memory controller: no OOM to see
    const oom = await runD('--memory', '32m', ROOTFS, 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=100M', 'count=1');
    await stopped(oom);
    expect(stateJson(oom).exit).toEqual({ code: null, signal: 'SIGKILL', status: 137, oomKilled: true });
  });

  it('removes a --rm container when it ends', async () => {
    const id = await runD('--rm', ROOTFS, 'true');
    await until(() => !stateEntries().ids.includes(id), 'the entry to go');
  });

  it('SIGKILLed: the container dies with it, and the next command records and cleans up', async () => {
    const limits = hierarchies().byController.pids ? ['--pids-limit', '50'] : [];
    const id = await runD('--name', 'orphan', ...limits, ROOTFS, 'sleep', '1000');
    const st = stateJson(id);
    process.kill(st.monitor.pid, 'SIGKILL');
    await until(() => !alive(st.pid), 'the container to die with its monitor');
    const [row] = JSON.parse(await ok(['ps', '-a', '--format', 'json']));
    expect(row).toMatchObject({ id, status: 'stopped', error: 'the monitor process died; the container was killed' });
    await ok(['rm', 'orphan']); // the hooks check that its cgroups and processes are gone
  });

  it('SIGKILLed after it recorded the end: the next command takes that end; a symlinked record is not read', async () => {
    const [a, b] = [
      await runD('--name', 'a', ROOTFS, 'sleep', '1000'),
      await runD('--name', 'b', ROOTFS, 'sleep', '1000'),
    ];
    for (const id of [a, b]) {
      const st = stateJson(id);
      process.kill(st.monitor.pid, 'SIGKILL');
      await until(() => !alive(st.pid), 'the container to die with its monitor');
    }
    // As the monitor writes it when PID 1 has ended, before it runs the clean-up step.
    const record =
      '{"status":768,"finishedAt":"2026-01-02T03:04:05.000000006Z","userUs":1,"systemUs":2,"maxRssKb":3}\n';
    writeFileSync(`${STATE}/${a}/exit`, record);
    writeFileSync(`${STATE}/a-record`, record);
    symlinkSync(`${STATE}/a-record`, `${STATE}/${b}/exit`);
    const rows = JSON.parse(await ok(['ps', '-a', '--format', 'json']));
    expect(rows.find((r: { id: string }) => r.id === a)).toMatchObject({ status: 'stopped' });
    expect(stateJson(a)).toMatchObject({ exit: { code: 3, signal: null, status: 3, oomKilled: false } });
    expect(stateJson(a).finishedAt).toBe('2026-01-02T03:04:05.000000006Z');
    expect(stateJson(a).error).toBeUndefined();
    expect(stateJson(b)).toMatchObject({ error: 'the monitor process died; the container was killed' });
    expect(stateJson(b).exit).toBeUndefined();
    rmSync(`${STATE}/a-record`);
    await ok(['rm', 'a', 'b']);
  });
});

describe('logs', () => {
  const script = 'echo out1; echo err1 >&2; printf "no newline"; sleep 0.3; echo " end"; echo err2 >&2';

  it('keeps stdout and stderr apart, in CRI records', async () => {
    const id = await runD('--name', 'two', ROOTFS, 'sh', '-c', script);
    await stopped(id);
    const r = await cli(['logs', 'two']);
    expect(r.stdout).toBe('out1\nno newline end\n');
    expect(r.stderr).toBe('err1\nerr2\n');
    const lines = readFileSync(`${STATE}/${id}/log`, 'utf8').trim().split('\n');
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] /);
    expect(lines.map((l) => l.slice(31))).toEqual(
      expect.arrayContaining(['stdout F out1', 'stderr F err1', 'stdout P no newline', 'stdout F  end']),
    );
    const tail = await cli(['logs', '--tail', '1', 'two']);
    expect([tail.stdout, tail.stderr]).toEqual(['', 'err2\n']);
  });

  it('-t, --since and --until', async () => {
    const id = await runD('--name', 'times', ROOTFS, 'sh', '-c', script);
    await stopped(id);
    const t = await cli(['logs', '-t', 'times']);
    const stamp = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) /;
    const outLines = t.stdout.trim().split('\n');
    expect(outLines).toHaveLength(2);
    for (const l of [...outLines, ...t.stderr.trim().split('\n')]) expect(l).toMatch(stamp);
    expect(outLines[1].replace(stamp, '')).toBe('no newline end'); // one stamp per line
    // The record times: everything from the second stdout line's on, and before it.
    const records = readFileSync(`${STATE}/${id}/log`, 'utf8').trim().split('\n');
    const cut = records.find((l) => l.includes(' stdout F  end'))!.slice(0, 30);
    const since = await cli(['logs', '--since', cut, 'times']);
    expect([since.stdout, since.stderr]).toEqual([' end\n', 'err2\n']);
    const until2 = await cli(['logs', '--until', records[0].slice(0, 30), 'times']);
    expect(until2.stdout + until2.stderr).toMatch(/^(out1|err1)\n$/);
    expect((await cli(['logs', '--since', '10m', 'times'])).stdout).toBe('out1\nno newline end\n');
    expect((await cli(['logs', '--until', '10m', 'times'])).stdout).toBe('');
    const bad = await cli(['logs', '--since', 'yesterday', 'times']);
    expect([bad.code, bad.stderr]).toEqual([
      125,
      'nsbox: invalid --since: yesterday (an RFC 3339 time, Unix seconds or a duration like 10m)\n',
    ]);
  });

  it('a --tty container logs its terminal as one stream', async () => {
    const id = await runD('-t', '--name', 'tty', ROOTFS, 'sh', '-c', 'tty; echo to-err >&2');
    await stopped(id);
    const r = await cli(['logs', 'tty']);
    expect(r.stdout).toMatch(/^\/dev\/console\r\nto-err\r\n$/);
    expect(r.stderr).toBe('');
  });
});
