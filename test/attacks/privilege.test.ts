// Attacks on privilege: regain capabilities in a new user namespace, become root through a setuid
// binary, ptrace what is outside, and reach the host's binary through /proc/PID/exe of a process
// that `nsbox exec` brings in (CVE-2019-5736).
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeArch } from '../../src/seccomp/arch.js';
import { CLI, nsbox } from '../helpers.js';
import { hostileSuite } from './util.js';

const s = hostileSuite();
const nr = (n: string) => nativeArch().byName.get(n)!;
const NEWUSER = '0x10000000';

describe('attacks on privilege', () => {
  it('cannot make a user namespace to regain capabilities (unshare -U, clone)', async () => {
    const r = await s.run(
      `probe sc ${nr('unshare')} ${NEWUSER}; probe clone ${NEWUSER}; grep CapEff /proc/self/status`,
    );
    const [unshare, clone, capEff] = r.stdout.trim().split('\n');
    expect(unshare).toBe('err EPERM');
    expect(clone).toBe('err EPERM');
    expect(capEff).toMatch(/CapEff:\s+00000000a80425fb/); // Docker's default set, nothing more
    // Without the filter the kernel would allow it (the attack is real): a new namespace with every capability.
    const open = await s.run(`probe sc ${nr('unshare')} ${NEWUSER} && grep CapEff /proc/self/status`, [
      '--seccomp',
      'unconfined',
    ]);
    expect(open.stdout).toMatch(/^ok 0\n/);
  });

  it('cannot become root through a setuid-root binary when run as --user 1000 (no_new_privs)', async () => {
    const suid = join(s.root(), 'bin', 'suidprobe');
    copyFileSync(s.probe(), suid);
    chownSync(suid, 0, 0);
    chmodSync(suid, 0o4755);
    const r = await s.run('suidprobe ids; grep -E "CapEff|NoNewPrivs" /proc/self/status', ['--user', '1000']);
    expect(r.stdout).toBe('uid=1000 euid=1000\nsetresuid(0): err EPERM\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n');
    // The binary would work without no_new_privs (the attack is real).
    const open = await s.run('suidprobe ids', ['--user', '1000', '--no-new-privileges=false']);
    expect(open.stdout).toBe('uid=1000 euid=0\nsetresuid(0): ok 0\n');
  });

  it('cannot ptrace what is outside: host processes are not there, the init reaper is not traceable', async () => {
    const r = await s.run(`probe ptrace ${process.pid}; probe ptrace 1`, ['--init']);
    expect(r.stdout).toBe('err ESRCH\nerr EPERM\n');
  });

  it('cannot reach the host binary through /proc/PID/exe of a process nsbox exec brings in (CVE-2019-5736)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'nsbox-state-'));
    const env = { ...process.env, NSBOX_STATE_DIR: state };
    try {
      // The victim watches /proc for a process whose exe is a file from outside its root, and tries to write it.
      const victim = spawn(process.execPath, [CLI, '--name', 'victim', s.root(), 'probe', 'exehunt', '6'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      victim.stdout!.on('data', (b) => (out += b));
      const done = new Promise<number | null>((r) => victim.on('close', r));
      let execs = 0;
      const end = Date.now() + 5000;
      while (Date.now() < end) {
        const r = await nsbox(['exec', 'victim', 'true'], { env });
        if (r.code === 0) execs++;
      }
      expect(await done).toBe(0);
      expect(execs).toBeGreaterThan(3);
      const m = /^hits (\d+) denied (\d+) opened (\d+)$/m.exec(out);
      expect(m, out).not.toBeNull();
      expect(out).not.toMatch(/^hit /m);
      expect(Number(m![1])).toBe(0);
      console.log(
        `CVE-2019-5736: ${execs} execs, ${m![2]} opens of /proc/PID/exe denied, ${m![3]} opened (all files inside the root)`,
      );
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
