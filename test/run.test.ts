// The core: a command becomes PID 1 of new namespaces rooted in ROOTFS.
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectNothingLeft, nsbox, ROOTFS, snapshot } from './helpers.js';

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

describe('isolation', () => {
  it('runs the command as PID 1 and ps lists only the container', async () => {
    const r = await nsbox([ROOTFS, 'sh', '-c', 'echo $$; ps -o pid,comm; true']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [pid, header, ...rows] = r.stdout.trim().split('\n');
    expect(pid).toBe('1');
    expect(header).toMatch(/PID/);
    expect(rows.map((l) => l.trim().split(/\s+/))).toEqual([
      ['1', 'sh'],
      [expect.any(String), 'ps'],
    ]);
  });

  it('keeps a hostname set inside from reaching the host', async () => {
    const host = hostname();
    // sethostname needs CAP_SYS_ADMIN, which Docker's default set leaves out.
    const r = await nsbox([
      '--cap-add',
      'SYS_ADMIN',
      '--hostname',
      'inner',
      ROOTFS,
      'sh',
      '-c',
      'hostname; hostname changed; hostname',
    ]);
    expect(r.stdout).toBe('inner\nchanged\n');
    expect(hostname()).toBe(host);
    expect(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).toBe(host);
  });

  it('names the host after the container by default', async () => {
    const r = await nsbox(['--name', 'web-1', ROOTFS, 'hostname']);
    expect(r.stdout).toBe('web-1\n');
  });

  it('shows only the rootfs, not the host files', async () => {
    const r = await nsbox([
      ROOTFS,
      'sh',
      '-c',
      'ls /; test -e /work && echo LEAK; test -e /root/.npmrc && echo LEAK2; true',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/LEAK/);
    expect(r.stdout.split('\n')).toContain('bin');
    expect(r.stdout.split('\n')).not.toContain('work');
  });

  it('mounts its own /proc', async () => {
    const r = await nsbox([
      ROOTFS,
      'sh',
      '-c',
      'ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "; echo; readlink /proc/self/ns/pid',
    ]);
    const [pids, ns] = r.stdout.trim().split('\n');
    expect(pids.trim().split(' ')[0]).toBe('1');
    const list = pids.trim().split(' ').map(Number);
    expect(list.every((p) => p < 20)).toBe(true); // sh and its pipeline, nothing of the host's
    expect(ns).not.toBe(readlinkSync('/proc/self/ns/pid'));
  });

  it('has only lo in its network namespace, and it is up', async () => {
    const r = await nsbox([ROOTFS, 'sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/operstate; ip -o link']);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('lo');
    expect(lines[1]).toMatch(/unknown|up/);
    expect(lines.slice(2)).toHaveLength(1);
    expect(lines[2]).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  });

  it('can reach its own loopback', async () => {
    const r = await nsbox([
      ROOTFS,
      'sh',
      '-c',
      'nc -l -p 7000 -e echo pong & i=0; until netstat -lnt | grep -q ":7000 " || [ $i -ge 200 ]; do i=$((i+1)); sleep 0.05; done; echo ping | nc 127.0.0.1 7000',
    ]);
    expect(r.stdout).toBe('pong\n');
  });

  it('does not see host System V IPC objects', async () => {
    const id = execFileSync('ipcmk', ['-M', '4096'], { encoding: 'utf8' }).match(/(\d+)/)![1];
    try {
      expect(execFileSync('ipcs', ['-m'], { encoding: 'utf8' })).toContain(id);
      const r = await nsbox([ROOTFS, 'sh', '-c', 'ipcs -m; cat /proc/sysvipc/shm']);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toMatch(new RegExp(`\\b${id}\\b`));
    } finally {
      execFileSync('ipcrm', ['-m', id]);
    }
  });

  it('keeps mounts made inside from reaching the host', async () => {
    const r = await nsbox([
      '--cap-add',
      'SYS_ADMIN',
      ROOTFS,
      'sh',
      '-c',
      'mount -t tmpfs none /tmp && touch /tmp/x && grep " /tmp " /proc/self/mountinfo | wc -l',
    ]);
    expect(r.stdout.trim()).toBe('1');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(ROOTFS);
  });

  it('gives a minimal /dev', async () => {
    const r = await nsbox([
      ROOTFS,
      'sh',
      '-c',
      'ls /dev | sort | tr "\\n" " "; echo; head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok',
    ]);
    const [devs, n, ok] = r.stdout.trim().split('\n');
    expect(devs.trim().split(' ')).toEqual([
      'fd',
      'full',
      'mqueue',
      'null',
      'ptmx',
      'pts',
      'random',
      'shm',
      'stderr',
      'stdin',
      'stdout',
      'tty',
      'urandom',
      'zero',
    ]);
    expect(n.trim()).toBe('4');
    expect(ok).toBe('null-ok');
  });

  it('mounts /sys read-only', async () => {
    const r = await nsbox([ROOTFS, 'sh', '-c', 'touch /sys/x 2>&1; grep " /sys " /proc/self/mountinfo']);
    expect(r.stdout).toMatch(/Read-only file system/);
    expect(r.stdout).toMatch(/ \/sys ro,/);
  });

  it('runs on the host root with nothing prepared', async () => {
    const r = await nsbox(['host', 'sh', '-c', 'echo $$; test -w /usr/bin && echo WRITABLE; ls /work 2>&1 | head -1']);
    expect(r.stdout.split('\n')[0]).toBe('1');
    expect(r.stdout).not.toContain('WRITABLE');
    expect(r.stdout).toMatch(/No such file/);
  });
});

describe('process', () => {
  it('propagates the exit code', async () => {
    expect((await nsbox([ROOTFS, 'sh', '-c', 'exit 42'])).code).toBe(42);
  });

  it('reports death by signal as 128+N', async () => {
    // PID 1 cannot be killed by its own signals; a child shell exec'd from it can be.
    const r = await nsbox([ROOTFS, 'sh', '-c', 'sh -c "kill -TERM \\$\\$"; exit $?']);
    expect(r.code).toBe(143);
  });

  it('forwards SIGTERM to the container', async () => {
    const r = await nsbox(
      [ROOTFS, 'sh', '-c', 'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.05; done'],
      {
        onStart: (pid) => {
          const t = setInterval(() => {
            try {
              process.kill(pid, 0);
            } catch {
              clearInterval(t);
            }
          }, 50);
          setTimeout(() => process.kill(pid, 'SIGTERM'), 800);
        },
      },
    );
    expect(r.stdout).toBe('ready\ngot-term\n');
    expect(r.code).toBe(7);
  });

  it('uses the given environment, workdir and defaults', async () => {
    const r = await nsbox([
      '-e',
      'FOO=bar baz',
      '--env=X=1',
      '-w',
      '/tmp',
      ROOTFS,
      'sh',
      '-c',
      'echo "$FOO|$X|$PWD|$PATH|$HOME"',
    ]);
    expect(r.stdout).toBe('bar baz|1|/tmp|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root\n');
  });

  it('passes stdin, stdout and stderr through', async () => {
    const r = await nsbox([ROOTFS, 'sh', '-c', 'cat; echo err >&2'], { input: 'hello\n' });
    expect(r.stdout).toBe('hello\n');
    expect(r.stderr).toBe('err\n');
  });

  it('leaks no host fd into the container', async () => {
    const r = await nsbox([ROOTFS, 'sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "']);
    expect(r.stdout.trim()).toBe('0 1 2 3'); // 3 is ls's own directory fd
  });

  it('accepts the explicit run subcommand and options after ROOTFS pass to the command', async () => {
    const r = await nsbox(['run', ROOTFS, 'echo', '--name', '-e']);
    expect(r.stdout).toBe('--name -e\n');
  });
});

describe('bad input', () => {
  const cases: [string, string[], RegExp, number][] = [
    ['a missing rootfs', ['/nonexistent/rootfs', 'sh'], /^nsbox: rootfs not found: \/nonexistent\/rootfs\n$/, 125],
    ['a rootfs that is a file', ['/etc/passwd', 'sh'], /^nsbox: rootfs is not a directory: \/etc\/passwd\n$/, 125],
    [
      'a command not in the rootfs',
      [ROOTFS, 'nosuchcmd'],
      /^nsbox: executable file not found in rootfs: nosuchcmd\n$/,
      127,
    ],
    [
      'a non-executable file',
      [ROOTFS, '/etc/passwd'],
      /^nsbox: permission denied: \/etc\/passwd is not executable\n$/,
      126,
    ],
    [
      'an unknown option',
      ['--frobnicate', ROOTFS, 'sh'],
      /^nsbox: unknown option: --frobnicate \(see --help\)\n$/,
      125,
    ],
    ['an empty command', [ROOTFS], /^nsbox: no command given \(see --help\)\n$/, 125],
    ['no rootfs at all', [], /^nsbox: missing ROOTFS \(see --help\)\n$/, 125],
    [
      'a missing workdir',
      ['-w', '/nope', ROOTFS, 'true'],
      /^nsbox: chdir to \/nope: No such file or directory \(ENOENT\)\n$/,
      125,
    ],
    ['a bad env', ['-e', '=x', ROOTFS, 'true'], /^nsbox: invalid --env value: =x \(expected KEY=VALUE\)\n$/, 125],
  ];
  for (const [what, args, message, code] of cases) {
    it(`rejects ${what} with one line`, async () => {
      const r = await nsbox(args);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(code);
      expect(r.stdout).toBe('');
    });
  }

  it('runs rootless for an ordinary user, saying in one line why its map is a single id', async () => {
    // A state directory of the user's own: nsbox refuses one that another user owns.
    const fs = require('node:fs') as typeof import('node:fs');
    const state = fs.mkdtempSync('/tmp/nsbox-nobody-state-');
    fs.chownSync(state, 65534, 65534);
    const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
      const p = require('node:child_process').spawn(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          '--inh-caps=-all',
          process.execPath,
          require('node:path').resolve(__dirname, '..', 'dist', 'run.js'),
          ROOTFS,
          'true',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NSBOX_STATE_DIR: state } },
      );
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d));
      p.on('close', (code: number | null) => res({ code, stderr }));
    });
    // nobody has no range in /etc/subuid: root inside is nobody outside, and nothing else is mapped (test/userns/).
    expect(r.stderr).toMatch(
      /^nsbox: warning: rootless with a single-id map \(container root is uid 65534, no other ids\): missing .*\n$/,
    );
    expect(r.code).toBe(0);
    fs.rmSync(state, { recursive: true, force: true });
  });
});

describe('cli', () => {
  it('prints help and version', async () => {
    const help = (await nsbox(['--help'])).stdout;
    expect(help).toMatch(/^Usage: nsbox run/);
    for (const c of ['ps', 'inspect', 'top', 'logs', 'exec', 'kill', 'stop', 'rm', 'stats', 'info'])
      expect(help).toMatch(new RegExp(`\\n  ${c}\\b`));
    expect((await nsbox(['--version'])).stdout).toMatch(/^nsbox \d+\.\d+\.\d+\n$/);
  });
});
