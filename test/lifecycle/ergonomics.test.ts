// The rough edges a new user hits: -e and --env-file as docker reads them, --read-only's tmpfs, a
// terminal of the container's own for exec -t, and a warning for -t without a terminal.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, lifecycleHooks, ok, ROOTFS, STATE, until } from './util.js';
import { execFileSync } from 'node:child_process';
import { applyEnv } from '../../dist/cli/env.js';

lifecycleHooks();
const mkfifo = (path: string) => execFileSync('mkfifo', [path]);
const dir = mkdtempSync(join(tmpdir(), 'nsbox-ergo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('environment', () => {
  it('-e NAME passes the value only when it is set here; --env-file reads KEY=VALUE lines', async () => {
    const file = join(dir, 'env');
    writeFileSync(file, '# a comment\n\nA=from-file\nB=b=c\nNSBOX_STATE_DIR\nUNSET_HERE_XYZ\n');
    const out = await ok(['run', '--env-file', file, '-e', 'A=from-flag', '-e', 'UNSET_ALSO_XYZ', ROOTFS, 'env']);
    expect(out).toMatch(/^A=from-flag$/m);
    expect(out).toMatch(/^B=b=c$/m);
    expect(out).toContain(`\nNSBOX_STATE_DIR=${STATE}\n`);
    expect(out).not.toMatch(/UNSET_HERE_XYZ|UNSET_ALSO_XYZ/);
  });

  // Node 20 itself reads a `--env-file` anywhere in its argv (a bug fixed in later Node versions), so
  // through the CLI a FIFO would block Node before nsbox runs: our reader is checked directly.
  it('refuses an env file that is missing, not regular (a FIFO does not hang) or a bad line', async () => {
    const fifo = join(dir, 'fifo');
    mkfifo(fifo);
    const env = new Map<string, string>();
    expect(() => applyEnv(env, [], [fifo])).toThrow(`--env-file ${fifo}: not a regular file`);
    expect(() => applyEnv(env, [], [join(dir, 'none')])).toThrow('no such file');
    const bad = join(dir, 'bad');
    writeFileSync(bad, '=x\n');
    const r = await cli(['run', '--env-file', bad, ROOTFS, 'true']);
    expect([r.code, r.stderr]).toEqual([125, 'nsbox: invalid --env value: =x (expected KEY=VALUE)\n']);
  });
});

describe('--read-only', () => {
  it('adds writable tmpfs /tmp and /run, as podman does, unless --read-only-tmpfs=false', async () => {
    const out = await ok([
      'run',
      '--read-only',
      ROOTFS,
      'sh',
      '-c',
      'touch /tmp/x /run/y && echo ok; touch /z 2>/dev/null || echo root-ro; grep -c " /tmp \\| /run " /proc/self/mountinfo',
    ]);
    expect(out).toBe('ok\nroot-ro\n2\n');
    const r = await cli([
      'run',
      '--read-only',
      '--read-only-tmpfs=false',
      ROOTFS,
      'sh',
      '-c',
      'touch /tmp/x || echo no-tmp',
    ]);
    expect(r.stdout).toBe('no-tmp\n');
  });
});

describe('terminals', () => {
  it("exec -t gives a terminal of the container's own devpts, and -t without a terminal warns", async () => {
    await ok(['run', '-d', '--name', 'ttybox', ROOTFS, 'sleep', '1000']);
    const r = await cli(['exec', '-t', 'ttybox', 'sh', '-c', 'tty; ls /dev/pts']);
    const [tty, ...pts] = r.stdout.replace(/\r/g, '').trim().split('\n');
    expect(tty).toMatch(/^\/dev\/pts\/\d+$/);
    expect(pts.join(' ').split(/\s+/)).toContain(tty.slice('/dev/pts/'.length));
    expect(r.stderr).toMatch(/warning: the input device is not a terminal/);
    await ok(['rm', '-f', 'ttybox']);
  });
});

describe('the CLI forgives typing', () => {
  it('a mistyped command is an unknown command with a suggestion; version works', async () => {
    const r = await cli(['stpo', 'web']);
    expect([r.code, r.stderr]).toEqual([125, 'nsbox: unknown command "stpo"; did you mean "stop"?\n']);
    expect((await cli(['inspcet', 'x'])).stderr).toBe('nsbox: unknown command "inspcet"; did you mean "inspect"?\n');
    expect((await cli(['xyzzy'])).stderr).toMatch(/^nsbox: unknown command "xyzzy" \(see nsbox --help/);
    expect(await ok(['version'])).toMatch(/^nsbox \d+\.\d+\.\d+\n$/);
    // A directory still runs without the word `run`.
    expect(await ok([ROOTFS, 'echo', 'implicit'])).toBe('implicit\n');
  });
});

describe('ps, inspect and prune as podman users type them', () => {
  it('ps --filter and --format templates; inspect shows limits, mounts, cgroups and pid; prune removes the stopped', async () => {
    const web = (
      await ok(['run', '-d', '--name', 'web', '--memory', '64m', '-v', `${dir}:/data:ro`, ROOTFS, 'sleep', '1000'])
    ).trim();
    const done = (await ok(['run', '-d', '--name', 'done', ROOTFS, 'true'])).trim();
    await until(
      async () => (await ok(['ps', '-a', '--format', '{{.Names}} {{.State}}'])).includes('done stopped'),
      'done to stop',
    );
    expect(await ok(['ps', '--format', '{{.Names}} {{ .State }}'])).toBe('web running\n');
    expect(await ok(['ps', '-a', '--filter', 'status=stopped', '--format', 'table {{.ID}}\\t{{.Names}}'])).toBe(
      `ID\tNAMES\n${done}\tdone\n`,
    );
    expect(await ok(['ps', '-a', '--filter', 'name=we', '--filter', 'name=do', '-q'])).toBe(`${web}\n${done}\n`);
    expect((await cli(['ps', '--format', '{{.Bogus}}'])).stderr).toMatch(
      /^nsbox: invalid --format: unknown field \.Bogus/,
    );
    expect((await cli(['ps', '--filter', 'colour=red'])).code).toBe(125);
    const [info] = JSON.parse(await ok(['inspect', 'web']));
    expect(info).toMatchObject({
      pid: expect.any(Number),
      limits: { memory: '64m' },
      mounts: [{ source: dir, target: '/data', readOnly: true }],
    });
    expect(Object.values(info.cgroups).some((p) => String(p).includes(web))).toBe(true);
    expect(await ok(['prune'])).toBe(`${done}\n`);
    expect(await ok(['ps', '-a', '-q'])).toBe(`${web}\n`);
    await ok(['rm', '-f', 'web']);
  });
});
