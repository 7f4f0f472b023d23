// Attacks on the kernel and the machine: kernel tunables, magic SysRq, modules, the host's disk
// (mount it, or mknod it and read it), keyrings, BPF, perf, kexec, reboot, the clock, swap.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeArch } from '../../src/seccomp/arch.js';
import { hostileSuite } from './util.js';
import { hostDisk, type HostDisk } from '../tools/disk.js';

const s = hostileSuite();
const nr = (n: string) => nativeArch().byName.get(n)!;

describe('attacks on the kernel', () => {
  it('cannot change a kernel setting through /proc/sys (read-only), the hostname included', async () => {
    const host = hostname();
    const r = await s.run(
      'echo pwned > /proc/sys/kernel/hostname; echo 1 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/kernel/panic; echo done',
    );
    expect(r.stdout).toBe('done\n');
    expect(r.stderr.trim().split('\n')).toEqual(Array(3).fill(expect.stringMatching(/Read-only file system/)));
    expect(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).toBe(host);
  });

  it('cannot trigger magic SysRq through /proc/sysrq-trigger', async () => {
    const r = await s.run('probe openw /proc/sysrq-trigger');
    // Read-only where the kernel has it; this kernel may be built without it (then it is absent inside too).
    expect(r.stdout).toBe(existsSync('/proc/sysrq-trigger') ? 'err EROFS\n' : 'err ENOENT\n');
  });

  it('cannot load or remove a kernel module', async () => {
    const r = await s.run(
      [
        'echo junk > /tmp/evil.ko',
        `probe sc ${nr('init_module')} 0 0 0`,
        `probe sc ${nr('finit_module')} 3 0 0 3</tmp/evil.ko`,
        `probe sc ${nr('delete_module')} 0 0`,
      ].join('; '),
    );
    expect(r.stdout).toBe('err EPERM\nerr EPERM\nerr EPERM\n');
  });

  describe('the host disk', () => {
    const SECRET = 'HOST-DISK-SECRET';
    let disk: HostDisk, loop: string, major: number, minor: number;
    beforeAll(() => {
      disk = hostDisk(SECRET, { ext4: true, size: 1 << 20 });
      ({ loop, major, minor } = disk);
    });
    afterAll(() => disk?.cleanup());

    it('cannot mount it, by its host name or through a node it makes', async () => {
      const r = await s.run(
        `rm -f /tmp/disk; mount ${loop} /mnt 2>&1; probe mknod /tmp/disk b ${major} ${minor}; mount -t ext4 /tmp/disk /mnt 2>&1; probe sc ${nr('mount')} 0 0 0 0 0`,
      );
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/No such file or directory|can't find|permission denied/);
      expect(lines[1]).toBe('ok 0'); // CAP_MKNOD: making the node is allowed, as in docker
      expect(lines[2]).toMatch(/Operation not permitted|[Pp]ermission denied/);
      expect(lines[3]).toBe('err EPERM');
    });

    it('cannot read it through a node it makes (every mount is nodev)', async () => {
      const r = await s.run(
        `rm -f /tmp/disk; probe mknod /tmp/disk b ${major} ${minor}; probe read /tmp/disk 16; probe openw /tmp/disk; dd if=/tmp/disk bs=16 count=1 2>&1 | head -1`,
      );
      expect(r.stdout).not.toContain(Buffer.from(SECRET).toString('hex'));
      expect(r.stdout).not.toContain(SECRET);
      expect(r.stdout.split('\n').slice(0, 3)).toEqual(['ok 0', 'err EACCES', 'err EACCES']);
    });
  });

  it('cannot use keyrings, BPF, perf events, userfaultfd, kexec, reboot, swap, the clock or accounting', async () => {
    const calls: [string, string][] = [
      ['add_key', '0 0 0 0 0'],
      ['keyctl', '0 0xfffffffd 1'],
      ['request_key', '0 0 0 0'],
      ['bpf', '0 0 0'],
      ['perf_event_open', '0 0 0 0 0'],
      ['userfaultfd', '0'],
      ['kexec_load', '0 0 0 0'],
      ['kexec_file_load', '0 0 0 0 0'],
      ['reboot', '0xfee1dead 0x28121969 0x4321fedc 0'],
      ['swapon', '0 0'],
      ['swapoff', '0'],
      ['clock_settime', '0 0'],
      ['settimeofday', '0 0'],
      ['adjtimex', '0'],
      ['acct', '0'],
      ['iopl', '3'],
      ['ioperm', '0 1 1'],
      ['syslog', '3 0 0'],
      ['io_uring_setup', '1 0'],
    ];
    const known = calls.filter(([n]) => nr(n) !== undefined);
    const r = await s.run(known.map(([n, a]) => `echo "${n} $(probe sc ${nr(n)} ${a})"`).join('; '));
    const got = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([n, ...v]) => [n, v.join(' ')]),
    );
    for (const [n] of known) {
      // adjtimex (read-only use) is allowed by docker; with a NULL buffer the kernel says EFAULT.
      expect(`${n}: ${got[n]}`).toBe(n === 'adjtimex' ? `${n}: err EFAULT` : `${n}: err EPERM`);
    }
  });

  it('cannot read kernel memory or the kernel log (/proc/kcore, /dev/kmsg, /proc/kallsyms addresses)', async () => {
    const r = await s.run(
      'cat /proc/kcore 2>/dev/null | wc -c; rm -f /tmp/kmsg; probe mknod /tmp/kmsg c 1 11; probe read /tmp/kmsg 64; head -3 /proc/kallsyms | cut -d" " -f1',
    );
    const [kcore, mk, kmsg, ...syms] = r.stdout.trim().split('\n');
    expect(kcore.trim()).toBe('0');
    expect(mk).toBe('ok 0');
    expect(kmsg).toBe('err EACCES');
    for (const a of syms) expect(a).toMatch(/^0+$/); // no CAP_SYSLOG: addresses hidden
  });
});
