// Issue 10, class 1 (runc CVE-2024-21626): a working directory that is a rootfs symlink to
// /proc/self/fd/N lands on whatever host directory the child still holds as fd N — a directory the
// Node process has open (library), the cgroup fd of CLONE_INTO_CGROUP (v2, a limit given). The
// plan closes every inherited fd before it resolves any path, opens the cwd in the root without
// magic links, enters it with fchdir and checks getcwd.
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawn } from '../../dist/index.js';
import { compile, namespaceFlags } from '../../dist/container.js';
import * as native from '../../dist/native.js';
import { execResult, reaped } from '../../dist/plan/child.js';
import * as op from '../../dist/plan/ops.js';
import { encode } from '../../dist/plan/encode.js';
import { hostFacts } from '../../dist/host/facts.js';
import { resolveSpec } from '../../dist/spec.js';
import { CLI, collect, nsbox } from '../helpers.js';
import { hostileSuite } from './util.js';

const s = hostileSuite();
let hostDir: string, dirFd: number;
const LINKS = 40;

beforeAll(() => {
  hostDir = mkdtempSync(join(tmpdir(), 'nsbox-hostdir-'));
  writeFileSync(join(hostDir, 'secret'), 'HOST-DIR-SECRET\n');
  dirFd = openSync(hostDir, constants.O_RDONLY | constants.O_DIRECTORY);
  for (let n = 3; n < LINKS; n++) symlinkSync(`/proc/self/fd/${n}`, join(s.root(), `app${n}`));
  symlinkSync('../../../../../../..', join(s.root(), 'up'));
});
afterAll(() => {
  closeSync(dirFd);
  rmSync(hostDir, { recursive: true, force: true });
});

const pwned = () => existsSync(join(hostDir, 'pwned'));

describe('working directory through a leaked fd (runc CVE-2024-21626)', () => {
  it('the library: /appN -> /proc/self/fd/N as cwd never reaches the directory Node holds open', async () => {
    expect(dirFd).toBeLessThan(LINKS);
    for (const n of [dirFd, 3, 4, 5, dirFd + 1]) {
      const r = await run({
        rootfs: s.root(),
        command: ['sh', '-c', 'cat secret; touch pwned; pwd'],
        cwd: `/app${n}`,
      }).then(
        (x) => ({ ok: true as const, out: x.stdout }),
        (e: Error) => ({ ok: false as const, out: e.message }),
      );
      expect(r.out).not.toContain('HOST-DIR-SECRET');
      if (!r.ok) expect(r.out).toMatch(new RegExp(`^chdir to /app${n}: `));
    }
    expect(pwned()).toBe(false);
    // The fd is closed by then (ENOENT); one that is open (stdio) is a magic link, refused as one.
    await expect(run({ rootfs: s.root(), command: ['true'], cwd: `/app${dirFd}` })).rejects.toThrow(
      `chdir to /app${dirFd}: No such file or directory (ENOENT)`,
    );
    rmSync(join(s.root(), 'magic'), { force: true });
    symlinkSync('/proc/self/fd/1', join(s.root(), 'magic'));
    await expect(run({ rootfs: s.root(), command: ['true'], cwd: '/magic' })).rejects.toThrow(
      'chdir to /magic: it goes through a /proc magic link or too many symlinks (ELOOP)',
    );
  });

  it('with the defence off (plain chdir, inherited fds open) the same container lands in the host directory', async () => {
    const spec = resolveSpec({ rootfs: s.root(), command: ['sh', '-c', 'touch pwned'], cwd: `/app${dirFd}` });
    // The plan builder refuses such a plan (a path resolved with inherited fds open): edit the built one.
    const steps = compile(spec, hostFacts())
      .steps.filter((o: { kind: string }) => o.kind !== 'closeInherited')
      .map((o: { kind: string; path?: string }) => (o.kind === 'chdirInRoot' ? op.chdir(o.path!) : o));
    const child = native.spawn({ flags: namespaceFlags(spec.namespaces), ops: encode(steps).ops });
    const [failed, status] = await Promise.all([execResult(child.errFd), reaped(child.pidfd, () => {})]);
    expect(failed).toBeNull();
    expect(status.code).toBe(0);
    expect(pwned()).toBe(true);
    rmSync(join(hostDir, 'pwned'));
  });

  it('the CLI, with a limit (a cgroup fd for CLONE_INTO_CGROUP on v2): no /appN reaches a host directory', async () => {
    for (let n = 3; n < 16; n++) {
      const r = await s.run('ls; cat secret cgroup.procs 2>&1; touch pwned', ['--pids-limit', '100', '-w', `/app${n}`]);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(new RegExp(`^nsbox: chdir to /app${n}: [^\\n]+\\n$`));
    }
    expect(pwned()).toBe(false);
  }, 300_000); // 13 starts: slow in the emulated v2 guest

  it('a symlink climbing out of the root resolves inside it; a missing directory is an error naming it', async () => {
    const up = await s.run('pwd; ls /', ['-w', '/up/etc']);
    expect(up.stdout.split('\n')[0]).toBe('/etc');
    const missing = await s.run('true', ['-w', '/no/such/dir']);
    expect(missing.stderr).toBe('nsbox: chdir to /no/such/dir: No such file or directory (ENOENT)\n');
    const user = await s.run('true', ['-u', '1000', '-w', '/root']);
    expect(user.stderr).toBe('nsbox: chdir to /root: Permission denied (EACCES)\n');
  });

  it('a directory given as stdio is refused (it would stay open: fchdir(0) leaves the root), run and exec', async () => {
    expect(() => spawn({ rootfs: s.root(), command: ['true'], stdio: [dirFd, 'ignore', 'ignore'] })).toThrow(
      `stdio[0] (fd ${dirFd}) is a directory`,
    );
    const r = await collect('sh', ['-c', `exec "$0" "$1" "$2" true < "$3"`, process.execPath, CLI, s.root(), hostDir]);
    expect(r).toMatchObject({
      code: 125,
      stderr: 'nsbox: stdio[0] (fd 0) is a directory: the container could leave its root through it\n',
    });
    const name = `stdio-${process.pid}`;
    expect(
      (await nsbox(['run', '-d', '--name', name, s.root(), 'sh', '-c', 'while true; do sleep 1; done'])).code,
    ).toBe(0);
    try {
      const e = await collect('sh', [
        '-c',
        `exec "$0" "$1" exec -i "$2" true < "$3"`,
        process.execPath,
        CLI,
        name,
        hostDir,
      ]);
      expect(e.code).toBe(125);
      expect(e.stderr).toMatch(/^nsbox: stdio\[0\] \(fd 0\) is a directory/);
    } finally {
      await nsbox(['rm', '-f', name]);
    }
  });

  it('exec -w: the same links are refused, a real directory works', async () => {
    const name = `cwd-${process.pid}`;
    const started = await nsbox(['run', '-d', '--name', name, s.root(), 'sh', '-c', 'while true; do sleep 1; done']);
    expect(started.code).toBe(0);
    try {
      for (const n of [3, 4, 5]) {
        const r = await nsbox(['exec', '-w', `/app${n}`, name, 'sh', '-c', 'ls; touch pwned']);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(new RegExp(`^nsbox: chdir to /app${n}: [^\\n]+\\n$`));
      }
      expect((await nsbox(['exec', '-w', '/up/etc', name, 'pwd'])).stdout).toBe('/etc\n');
    } finally {
      await nsbox(['rm', '-f', name]);
    }
    expect(pwned()).toBe(false);
    expect(readdirSync(hostDir)).toEqual(['secret']);
  });
});
