// Process hygiene: rlimits (defaults and --ulimit), no host file descriptor inside, a new session.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostHardLimit } from '../src/hardening/rlimits.js';
import { CLI, expectNothingLeft, nsbox, ROOTFS, snapshot } from './helpers.js';

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

const limits = (args: string[]) =>
  nsbox([...args, ROOTFS, 'sh', '-c', 'ulimit -Sn; ulimit -Hn; ulimit -Su; ulimit -Hu; ulimit -Sc']);

describe('rlimits', () => {
  it('sets open files to soft 1024, hard 524288 (or the host hard limit, if lower) by default', async () => {
    const host = hostHardLimit('nofile');
    const hard = host === -1 ? 524288 : Math.min(host, 524288);
    const r = await limits([]);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([String(Math.min(1024, hard)), String(hard)]);
  });

  it('applies --ulimit NAME=SOFT[:HARD], unlimited included', async () => {
    const r = await limits(['--ulimit', 'nofile=100:200', '--ulimit', 'nproc=77', '--ulimit', 'core=unlimited']);
    expect(r.stdout).toBe('100\n200\n77\n77\nunlimited\n');
  });

  const bad: [string, string[], RegExp][] = [
    ['an unknown limit', ['--ulimit', 'files=10'], /^nsbox: unknown ulimit: files \(one of cpu, fsize, .*\)\n$/],
    [
      'soft above hard',
      ['--ulimit', 'nofile=200:100'],
      /^nsbox: ulimit nofile: soft limit 200 is above the hard limit 100\n$/,
    ],
    [
      'a value that is no number',
      ['--ulimit', 'nofile=lots'],
      /^nsbox: ulimit nofile: invalid limit "lots" \(a number, or unlimited\)\n$/,
    ],
    [
      'a malformed --ulimit',
      ['--ulimit', 'nofile'],
      /^nsbox: invalid --ulimit value: nofile \(expected NAME=SOFT\[:HARD\]\)\n$/,
    ],
  ];
  for (const [what, args, message] of bad) {
    it(`rejects ${what} with one line`, async () => {
      const r = await nsbox([...args, ROOTFS, 'true']);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(125);
    });
  }

  it("refuses a hard limit above the host's when it cannot raise it (no CAP_SYS_RESOURCE)", async () => {
    const host = hostHardLimit('nofile');
    const eff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
    if (host === -1 || (eff >> 24n) & 1n) return; // this host can raise it: nothing to refuse
    const r = await nsbox(['--ulimit', `nofile=${host + 1}`, ROOTFS, 'true']);
    expect(r.stderr).toBe(
      `nsbox: ulimit nofile: hard limit ${host + 1} is above this process's ${host} (raising it needs CAP_SYS_RESOURCE)\n`,
    );
    expect(r.code).toBe(125);
  });
});

describe('file descriptors and session', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-fd-'));
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'host secret\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The CLI started with host fds 3..6 open (a file, a directory, a pipe), as a careless parent would. */
  function withLeakyParent(args: string[]): Promise<string> {
    const file = openSync(secret, 'r'),
      d = openSync(dir, 'r');
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [CLI, ...args], {
        stdio: ['ignore', 'pipe', 'inherit', file, d, 'pipe', 'pipe'],
      });
      closeSync(file);
      closeSync(d);
      let out = '';
      p.stdout!.on('data', (b) => (out += b));
      p.on('error', reject);
      p.on('close', () => resolve(out));
    });
  }

  it('lets no host fd into the container, even ones the parent left inheritable', async () => {
    const out = await withLeakyParent([
      ROOTFS,
      'sh',
      '-c',
      'for f in /proc/self/fd/*; do echo "$f $(readlink $f)"; done',
    ]);
    const fds = out
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[0].replace('/proc/self/fd/', ''));
    expect(fds.filter((f) => Number(f) > 2).length).toBeLessThanOrEqual(1); // the shell's glob may hold one
    expect(out).not.toContain(dir);
    expect(out).not.toContain('secret');
  });

  it('leaves none in PID 1 either, with --init', async () => {
    const out = await withLeakyParent([
      '--init',
      ROOTFS,
      'sh',
      '-c',
      'ls /proc/1/fd | sort -n | tr "\\n" " "; echo; cat /proc/1/fd/3 2>&1 | head -1',
    ]);
    const [pid1fds] = out.split('\n');
    expect(
      pid1fds
        .trim()
        .split(' ')
        .every((f) => Number(f) <= 2),
    ).toBe(true);
    expect(out).not.toContain('host secret');
  });

  it('runs the command in a session of its own, with no controlling terminal', async () => {
    const r = await nsbox([ROOTFS, 'sh', '-c', 'cut -d" " -f6,7 /proc/self/stat; cut -d" " -f6 /proc/1/stat']);
    const [sidTty, sid1] = r.stdout.trim().split('\n');
    expect(sidTty).toBe(`${sid1} 0`); // session of PID 1, tty_nr 0
    expect(sid1).toBe('1');
  });
});
