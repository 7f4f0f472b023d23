// Issue 10, class 2: /proc, /sys and /dev mounted by a path that follows symlinks, masks applied by
// path and skipped when missing. A container sharing a writable rootfs swapped /proc for a symlink
// while others started, and the next one got an unmasked, writable /proc/sys. Now the three must be
// real directories of the rootfs, the filesystems are attached to their fds, and masks and
// read-only paths are applied relative to the mounted tree (an error, never a skip).
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, nsbox } from '../helpers.js';
import { hostileSuite } from './util.js';

const s = hostileSuite();

/** Lines a victim prints when something is wrong: a writable /proc/sys or an unmasked /proc file. */
const CHECK = [
  'for p in /proc /proc.link /fakeproc; do',
  '  (: >> $p/sys/kernel/core_pattern) 2>/dev/null && echo WRITABLE $p',
  '  [ -s $p/timer_list ] && echo UNMASKED $p',
  '  grep -q "^cpu" $p/stat 2>/dev/null && echo PROC $p',
  'done; true',
].join('\n');

describe('/proc, /sys and /dev attached to real directories of the rootfs', () => {
  it('a default container: /proc mounted, /proc/sys read-only, masked files empty', async () => {
    const r = await s.run(CHECK);
    expect(r.stdout).toBe('PROC /proc\n');
  });

  for (const d of ['proc', 'sys', 'dev']) {
    it(`refuses a rootfs whose /${d} is a symlink (to a directory of the rootfs)`, async () => {
      const root = s.root();
      renameSync(join(root, d), join(root, `${d}.real`));
      symlinkSync(`${d}.real`, join(root, d));
      try {
        const r = await s.run('true');
        expect(r.code).toBe(125);
        expect(r.stderr).toBe(
          `nsbox: open /${d} in the rootfs: /${d} is a symlink in the rootfs (it must be a directory) (ELOOP)\n`,
        );
      } finally {
        unlinkSync(join(root, d));
        renameSync(join(root, `${d}.real`), join(root, d));
      }
    });
  }

  it('holds while another container swaps /proc for a symlink in a shared writable rootfs', async () => {
    // The victims' rootfs is a volume of the attacker, which flips `proc` and `proc.link` (-> fakeproc).
    const dir = mkdtempSync(join(tmpdir(), 'nsbox-sharedroot-'));
    const victim = join(dir, 'root');
    cpSync(s.root(), victim, { recursive: true, verbatimSymlinks: true });
    mkdirSync(join(victim, 'fakeproc'));
    symlinkSync('fakeproc', join(victim, 'proc.link'));
    const racer = spawn(
      process.execPath,
      [CLI, '-v', `${victim}:/victim`, s.root(), 'probe', 'swap', '/victim/proc', '/victim/proc.link', '6'],
      { stdio: 'ignore' },
    );
    const racerDone = new Promise((r) => racer.once('close', r));
    try {
      const seen = { started: 0, refused: 0 };
      for (let i = 0; i < 15; i++) {
        const r = await nsbox([victim, 'sh', '-c', CHECK]);
        if (r.code === 0) {
          seen.started++;
          expect(r.stdout).not.toMatch(/WRITABLE|UNMASKED/);
        } else {
          expect(r.stderr).toMatch(/^nsbox: [^\n]+\n$/);
          seen.refused++;
        }
      }
      expect(seen.started + seen.refused).toBe(15);
    } finally {
      const timer = setTimeout(() => racer.kill('SIGKILL'), 20_000);
      await racerDone;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses volumes and tmpfs over /proc/sys, /sys, under /sys and /dev itself, and one that resolves into them', async () => {
    const cases: [string[], RegExp][] = [
      [['--tmpfs', '/proc/sys'], /mounts over \/proc are not allowed/],
      [['--tmpfs', '/sys'], /mounts over \/sys are not allowed/],
      [['-v', '/tmp:/sys/fs/cgroup'], /mounts over \/sys are not allowed/],
      [['--tmpfs', '/sys/kernel'], /mounts over \/sys are not allowed/],
      [['--tmpfs', '/dev'], /mounts over \/dev are not allowed/],
    ];
    for (const [opts, msg] of cases) {
      const r = await s.run('true', opts);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.split('\n').length).toBe(2);
    }
    // Through a symlink of the rootfs: the target is resolved in the root, and landing on proc or sysfs is refused.
    symlinkSync('/proc/sys', join(s.root(), 'psys'));
    symlinkSync('/sys/kernel', join(s.root(), 'skern'));
    try {
      for (const [opts, t] of [
        [['--tmpfs', '/psys'], '/psys'],
        [['-v', `${join(s.root(), 'tmp')}:/skern/mm`], '/skern/mm'],
      ] as const) {
        const r = await s.run('true', [...opts]);
        expect(r.stderr).toBe(`nsbox: make the mount point ${t} in the root: it resolves into /proc or /sys (EXDEV)\n`);
      }
    } finally {
      unlinkSync(join(s.root(), 'psys'));
      unlinkSync(join(s.root(), 'skern'));
    }
    // A path under /dev is fine.
    writeFileSync(join(tmpdir(), `nsbox-devfile-${process.pid}`), 'x');
    try {
      const ok = await s.run('cat /dev/x', ['-v', `${join(tmpdir(), `nsbox-devfile-${process.pid}`)}:/dev/x:ro`]);
      expect(ok.stdout).toBe('x');
    } finally {
      rmSync(join(tmpdir(), `nsbox-devfile-${process.pid}`));
    }
  });
});
