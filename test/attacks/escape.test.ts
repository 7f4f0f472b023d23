// Attacks on isolation: see the host's processes, read the host's files, climb out of the root,
// and redirect a volume mount with a symlink swapped in while the container starts.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeArch } from '../../src/seccomp/arch.js';
import { hostileSuite } from './util.js';

const s = hostileSuite();
const nr = (n: string) => nativeArch().byName.get(n)!;

let secretDir: string, secret: string;
beforeAll(() => {
  secretDir = mkdtempSync(join(tmpdir(), 'nsbox-hostsecret-'));
  secret = join(secretDir, 'secret');
  writeFileSync(secret, 'HOST-ONLY-SECRET\n');
});
afterAll(() => rmSync(secretDir, { recursive: true, force: true }));

describe('attacks on isolation', () => {
  it('cannot list or signal host processes (PID namespace)', async () => {
    const r = await s.run(
      `ls /proc | grep -c "^[0-9]*$"; kill -0 ${process.pid} 2>&1; echo rc=$?; probe ptrace ${process.pid}`,
    );
    const [count, ...rest] = r.stdout.trim().split('\n');
    expect(Number(count)).toBeLessThan(6); // sh, ls, grep and a few: no host process
    expect(rest.join('\n')).toMatch(/No such process\nrc=1\nerr ESRCH$/);
  });

  it('cannot read a host file outside the rootfs: by path, through /proc/*/root, or by climbing ..', async () => {
    const r = await s.run(
      [
        `cat ${secret} 2>&1`,
        `cat /proc/1/root${secret} 2>&1`,
        `cat /proc/self/root/../../../..${secret} 2>&1`,
        `cd /../../../.. && cat .${secret} 2>&1`,
        `probe chrootesc ${secret}`,
      ].join('; '),
    );
    expect(r.stdout).not.toContain('HOST-ONLY-SECRET');
    // The double-chroot escape (CAP_SYS_CHROOT is in the default set) climbs out only to the container's own root.
    expect(r.stdout.trim().split('\n').pop()).toBe('err ENOENT');
  });

  it('cannot open a host file by handle (the "shocker" exploit: open_by_handle_at)', async () => {
    const r = await s.run(`probe sc ${nr('open_by_handle_at')} 3 0 0`);
    expect(r.stdout).toBe('err EPERM\n'); // seccomp: allowed only with CAP_DAC_READ_SEARCH, which is not given
  });

  it('cannot send a volume mount out of the rootfs by swapping a symlink under its target (runc CVE-2021-30465)', async () => {
    // A hostile container (A) shares a volume with the victim (B) and flips, inside it, `mnt`
    // between a directory and a symlink that climbs to a host directory; B mounts a volume on /shared/mnt.
    const shared = mkdtempSync(join(tmpdir(), 'nsbox-shared-'));
    const src = mkdtempSync(join(tmpdir(), 'nsbox-src-'));
    const target = mkdtempSync(join(tmpdir(), 'nsbox-target-'));
    writeFileSync(join(src, 'payload'), 'x');
    mkdirSync(join(shared, 'mnt'));
    symlinkSync(`../../../../../../../..${target}`, join(shared, 'mnt.link'));
    const { CLI } = await import('../helpers.js');
    const racer = spawn(
      process.execPath,
      [CLI, '-v', `${shared}:/shared`, s.root(), 'probe', 'swap', '/shared/mnt', '/shared/mnt.link', '5'],
      { stdio: 'ignore' },
    );
    const racerDone = new Promise((r) => racer.once('close', r));
    try {
      const results = { mounted: 0, refused: 0 };
      for (let i = 0; i < 15; i++) {
        const r = await s.run('true', ['-v', `${shared}:/shared`, '-v', `${src}:/shared/mnt`]);
        if (r.code === 0) results.mounted++;
        else {
          expect(r.stderr).toMatch(/^nsbox: [^\n]+\n$/);
          results.refused++;
        }
      }
      expect(results.mounted + results.refused).toBe(15);
      expect(readdirSync(target)).toEqual([]); // nothing was made or mounted in the host directory
    } finally {
      // The racer ends by itself (PID 1 of its container ignores forwarded SIGTERM), and cleans up.
      const timer = setTimeout(() => racer.kill('SIGKILL'), 20_000);
      await racerDone;
      clearTimeout(timer);
      for (const d of [shared, src, target]) rmSync(d, { recursive: true, force: true });
    }
  });
});
