// The seccomp compiler, tested by running its filters: a static probe inside a container makes
// exact system calls and prints what the kernel (or the filter) answered.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { arch as archNamed, nativeArch } from '../src/seccomp/arch.js';
import { compile } from '../src/seccomp/compile.js';
import { toPolicy } from '../src/seccomp/profile.js';
import { DEFAULT_PROFILE } from '../src/seccomp/default.js';
import { seccompFilter } from '../src/seccomp/index.js';
import { nsbox } from './helpers.js';
import { hostileSuite } from './attacks/util.js';

const arch = nativeArch();
const nr = (name: string) => {
  const n = arch.byName.get(name);
  if (n === undefined) throw new Error(`no syscall ${name} on ${arch.name}`);
  return n;
};

// The probe rootfs and the leak check around every test, as the hostile-container suite has them.
const suite = hostileSuite();

/** Runs `probe` once per line of calls in one container; returns each call's answer. */
async function probe(calls: string[], opts: string[] = []): Promise<string[]> {
  const script = calls.map((c) => `probe ${c} || echo "died $?"`).join('\n');
  const r = await nsbox([...opts, suite.root(), 'sh', '-c', script]);
  expect(r.stderr.replace(/Bad system call\n/g, '')).toBe('');
  expect(r.code).toBe(0);
  return r.stdout.trim().split('\n');
}

let tmpCount = 0;
function profileFile(profile: unknown): string {
  const f = join(suite.root(), '..', `profile-${tmpCount++}.json`);
  writeFileSync(f, typeof profile === 'string' ? profile : JSON.stringify(profile));
  return f;
}

describe('default profile (Docker equivalent)', () => {
  // Calls an unprivileged process may make, which Docker's profile refuses: the kernel would answer.
  const refused: [string, string][] = [
    ['keyctl (the session keyring)', `sc ${nr('keyctl')} 0 0xfffffffd 1`],
    ['unshare a user namespace', `sc ${nr('unshare')} 0x10000000`],
    ['clone into a user namespace', 'clone 0x10000000'],
    ['io_uring_setup', `sc ${nr('io_uring_setup')} 1 0`],
    ['perf_event_open', `sc ${nr('perf_event_open')} 0 0 0 0 0`],
    ['bpf', `sc ${nr('bpf')} 0 0 0`],
    ['personality(PER_BSD)', `sc ${nr('personality')} 6`],
    ['socket(AF_VSOCK)', `sc ${nr('socket')} 40 1 0`],
    ['socket(AF_VSOCK) with junk in the high 32 bits', `sc ${nr('socket')} 0x100000028 1 0`],
    ['clock_settime', `sc ${nr('clock_settime')} 0 0`],
  ];

  it('refuses what Docker refuses with EPERM, where the kernel itself would have answered', async () => {
    const confined = await probe(refused.map(([, c]) => c));
    const unconfined = await probe(
      refused.map(([, c]) => c),
      ['--seccomp', 'unconfined'],
    );
    refused.forEach(([what], i) => {
      expect(`${what}: ${confined[i]}`).toBe(`${what}: err EPERM`);
      expect(`${what}: ${unconfined[i]}`).not.toBe(`${what}: err EPERM`);
    });
  });

  it('refuses privileged calls even where a capability would allow them (mount, reboot, modules, kexec, swap, acct)', async () => {
    const out = await probe([
      `sc ${nr('mount')} 0 0 0 0 0`,
      `sc ${nr('umount2')} 0 0`,
      `sc ${nr('pivot_root')} 0 0`,
      `sc ${nr('setns')} 0 0`,
      `sc ${nr('reboot')} 0 0 0 0`,
      `sc ${nr('init_module')} 0 0 0`,
      `sc ${nr('finit_module')} 0 0 0`,
      `sc ${nr('delete_module')} 0 0`,
      `sc ${nr('kexec_load')} 0 0 0 0`,
      `sc ${nr('swapon')} 0 0`,
      `sc ${nr('acct')} 0`,
      `sc ${nr('add_key')} 0 0 0 0 0`,
      `sc ${nr('request_key')} 0 0 0 0`,
      `sc ${nr('userfaultfd')} 0`,
      `sc ${nr('open_tree')} 0 0 0`,
      `sc ${nr('fsopen')} 0 0`,
      `sc ${nr('settimeofday')} 0 0`,
    ]);
    expect(out).toEqual(out.map(() => 'err EPERM'));
  });

  it('allows ordinary work: the personality query, Linux personality, clone for fork and threads', async () => {
    const out = await probe([
      `sc ${nr('getpid')}`,
      `sc ${nr('personality')} 0xffffffff`,
      `sc ${nr('personality')} 0`,
      'clone 0',
      `sc ${nr('socket')} 1 1 0`,
      `sc ${nr('fchmodat2')} 0xffffff9c 0 0 0`,
    ]);
    expect(out[0]).toBe('ok 2'); // sh is PID 1
    expect(out[1]).toMatch(/^ok /);
    expect(out[2]).toMatch(/^ok /);
    expect(out[3]).toBe('ok 0');
    expect(out[4]).toMatch(/^ok \d+/); // AF_UNIX
    expect(out[5]).toBe('err EFAULT'); // fchmodat2 reached the kernel
    const r = await nsbox([
      suite.root(),
      'sh',
      '-c',
      'ls / >/dev/null && echo a | sed s/a/b/ && sleep 0.01 && date >/dev/null && echo done',
    ]);
    expect(r.stdout).toBe('b\ndone\n');
  });

  it('answers clone3 with ENOSYS so that libc falls back to clone', async () => {
    expect(await probe([`sc ${nr('clone3')} 0 0`])).toEqual(['err ENOSYS']);
  });

  it('allows what a capability is given for, as Docker does (CAP_SYS_ADMIN: unshare, mount)', async () => {
    const out = await probe([`sc ${nr('unshare')} 0x20000`, `sc ${nr('clone3')} 0 0`], ['--cap-add', 'SYS_ADMIN']);
    expect(out).toEqual(['ok 0', 'err EINVAL']); // the kernel saw clone3's empty arguments
  });

  it('kills a call made through another architecture (i386 int 0x80, x32)', async () => {
    if (arch.name !== 'x86_64') return;
    const unconfined = await probe(['sc32 20'], ['--seccomp', 'unconfined']);
    expect(unconfined[0]).toMatch(/^ok \d+$/); // the kernel runs i386 code here
    const out = await probe(['sc32 20', `x32 ${nr('getpid')}`]);
    expect(out).toEqual(['died 159', 'died 159']); // 128 + SIGSYS
  });

  it('is installed without no_new_privs too (before the capability drop), in run and in exec', async () => {
    const script = `grep -E "NoNewPrivs|Seccomp:" /proc/self/status; probe sc ${nr('unshare')} 0x10000000`;
    const r = await nsbox(['--no-new-privileges=false', suite.root(), 'sh', '-c', script]);
    expect(r.stdout).toBe('NoNewPrivs:\t0\nSeccomp:\t2\nerr EPERM\n');
    const state = mkdtempSync(join(tmpdir(), 'nsbox-state-'));
    const env = { ...process.env, NSBOX_STATE_DIR: state };
    try {
      expect(
        (
          await nsbox(['run', '-d', '--name', 'nonnp', '--no-new-privileges=false', suite.root(), 'sleep', '60'], {
            env,
          })
        ).code,
      ).toBe(0);
      const e = await nsbox(['exec', 'nonnp', 'sh', '-c', script], { env });
      expect(e.stdout).toBe('NoNewPrivs:\t0\nSeccomp:\t2\nerr EPERM\n');
    } finally {
      await nsbox(['rm', '-f', 'nonnp'], { env });
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('shows as a filter in /proc/self/status, and not when unconfined', async () => {
    const on = await nsbox([suite.root(), 'grep', 'Seccomp:', '/proc/self/status']);
    const off = await nsbox(['--seccomp', 'unconfined', suite.root(), 'grep', 'Seccomp:', '/proc/self/status']);
    expect(on.stdout).toMatch(/Seccomp:\s+2/);
    expect(off.stdout).toMatch(/Seccomp:\s+0/);
  });
});

describe('compiler', () => {
  // One syscall per operator; each ignores its arguments, so the filter alone decides.
  const ops = [
    'SCMP_CMP_EQ',
    'SCMP_CMP_NE',
    'SCMP_CMP_LT',
    'SCMP_CMP_LE',
    'SCMP_CMP_GT',
    'SCMP_CMP_GE',
    'SCMP_CMP_MASKED_EQ',
  ];
  const calls = ['getppid', 'getuid', 'geteuid', 'getgid', 'getegid', 'gettid', 'getpgrp'];
  const V = 0x1_0000_0005n,
    MASK = 0xff_0000_00ffn;
  const holds = (op: string, x: bigint): boolean =>
    ({
      SCMP_CMP_EQ: x === V,
      SCMP_CMP_NE: x !== V,
      SCMP_CMP_LT: x < V,
      SCMP_CMP_LE: x <= V,
      SCMP_CMP_GT: x > V,
      SCMP_CMP_GE: x >= V,
      SCMP_CMP_MASKED_EQ: (x & MASK) === (V & MASK),
    })[op]!;
  const samples = [
    0n,
    5n,
    6n,
    0xffff_ffffn,
    0x1_0000_0000n,
    0x1_0000_0004n,
    V,
    0x1_0000_0006n,
    0x2_0000_0000n,
    0xab01_0000_0005n,
    0xffff_ffff_ffffn,
  ];

  it('compares 64-bit arguments as libseccomp does, for every operator', async () => {
    const profile = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: ops.map((op, i) => ({
        names: [calls[i]],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 77,
        args: [
          { index: 2, op, value: op === 'SCMP_CMP_MASKED_EQ' ? Number(MASK) : Number(V), valueTwo: Number(V & MASK) },
        ],
      })),
    };
    const lines: string[] = [];
    const want: string[] = [];
    ops.forEach((op, i) =>
      samples.forEach((x) => {
        lines.push(`sc ${nr(calls[i])} 0 0 0x${x.toString(16)}`);
        want.push(`${op} 0x${x.toString(16)}: ${holds(op, x) ? 'err EBADFD' : 'ok'}`);
      }),
    );
    const out = await probe(lines, ['--seccomp', profileFile(profile)]);
    const got = out.map(
      (o, j) =>
        `${ops[Math.floor(j / samples.length)]} 0x${samples[j % samples.length].toString(16)}: ${o.startsWith('ok') ? 'ok' : o}`,
    );
    expect(got).toEqual(want);
  });

  it('reaches far rule blocks (jumps beyond 255 instructions) and keeps the first matching rule', async () => {
    // An argument check on ~300 syscalls makes a filter of thousands of instructions.
    const names = [...arch.byName.keys()]
      .filter(
        (n) =>
          !/^(exit|exit_group|execve|rt_sig|wait4|brk|mmap|munmap|close|read|write|arch_prctl|set_tid|getppid)/.test(n),
      )
      .slice(0, 300);
    const profile = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names, action: 'SCMP_ACT_ERRNO', errnoRet: 7, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0xdead }] },
        {
          names: ['getppid'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 33,
          args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0xbeef }],
        },
        {
          names: ['getppid'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 34,
          args: [{ index: 0, op: 'SCMP_CMP_GE', value: 0xbeef }],
        },
      ],
    };
    const { filter } = seccompFilter(profile as never, []);
    expect(filter.length / 8).toBeGreaterThan(1000);
    const last = names[names.length - 1];
    const out = await probe(
      [`sc ${nr(last)} 0xdead`, `sc ${nr('getppid')} 0xbeef`, `sc ${nr('getppid')} 0xbef0`, `sc ${nr('getppid')} 1`],
      ['--seccomp', profileFile(profile)],
    );
    expect(out.slice(0, 3)).toEqual(['err E2BIG', 'err EDOM', 'err ERANGE']);
    expect(out[3]).toMatch(/^ok \d+$/);
  });

  it('answers ENOSYS above the table even when the default is to kill', async () => {
    const profile = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['getcpu'], action: 'SCMP_ACT_KILL_PROCESS' }],
    };
    const out = await probe(
      [`sc ${arch.maxNr + 1}`, `sc ${arch.maxNr + 100}`, `sc ${nr('getcpu')}`],
      ['--seccomp', profileFile(profile)],
    );
    expect(out).toEqual(['err ENOSYS', 'err ENOSYS', 'died 159']);
  });

  it('applies Docker profile filters: includes/excludes on caps, arches, minKernel; old "name"; unknown names; TRAP', async () => {
    const profile = {
      defaultAction: 'SCMP_ACT_ALLOW',
      flags: ['SECCOMP_FILTER_FLAG_LOG'],
      syscalls: [
        { names: ['getuid'], action: 'SCMP_ACT_ERRNO', includes: { caps: ['CAP_KILL'] } }, // has it: applies
        { names: ['geteuid'], action: 'SCMP_ACT_ERRNO', includes: { caps: ['CAP_SYS_MODULE'] } }, // lacks it: skipped
        { names: ['getgid'], action: 'SCMP_ACT_ERRNO', excludes: { caps: ['CAP_KILL'] } }, // has it: skipped
        { names: ['getegid'], action: 'SCMP_ACT_ERRNO', includes: { arches: ['ppc64le'] } }, // not this arch: skipped
        {
          names: ['gettid'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 12,
          includes: { minKernel: '4.0', arches: ['amd64', 'arm64'] },
        },
        { name: 'getpgrp', action: 'SCMP_ACT_TRAP' },
        { names: ['no_such_syscall', 'getsid'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      ],
    };
    const out = await probe(
      ['getuid', 'geteuid', 'getgid', 'getegid', 'gettid', 'getsid', 'getpgrp'].map((n) => `sc ${nr(n)} 0`),
      ['--seccomp', profileFile(profile)],
    );
    expect(out.map((o) => o.replace(/^ok \d+$/, 'ok'))).toEqual([
      'err EPERM',
      'ok',
      'ok',
      'ok',
      'err ENOMEM',
      'err EPERM',
      'died 159',
    ]);
  });
});

describe('bad profiles', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not JSON', '{"defaultAction": ', /not JSON/],
    ['an unknown action', { defaultAction: 'SCMP_ACT_FOO' }, /defaultAction: unknown action "SCMP_ACT_FOO"/],
    [
      'a notify action',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] },
      /syscalls\[0\]\.action: SCMP_ACT_NOTIFY is not supported/,
    ],
    [
      'an argument index out of range',
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }],
      },
      /args\[0\]\.index: must be 0 to 5, got 6/,
    ],
    [
      'an unknown operator',
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_XX' }] }],
      },
      /unknown operator "SCMP_CMP_XX"/,
    ],
    [
      'no names',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] },
      /syscalls\[0\]\.names: must list syscall names/,
    ],
    [
      'an unknown flag',
      { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_BOGUS'] },
      /flags: unknown flag/,
    ],
  ];
  for (const [what, profile, message] of cases) {
    it(`rejects ${what} with one line, before starting anything`, async () => {
      const f = profileFile(profile);
      const r = await nsbox(['--seccomp', f, suite.root(), 'true']);
      expect(r.stderr).toMatch(new RegExp(`^nsbox: seccomp profile ${f}: .*\\n$`));
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(125);
    });
  }

  it('reads only a regular file, at most 4 MiB, without waiting on a FIFO', async () => {
    const fifo = join(suite.root(), '..', `profile-fifo-${tmpCount++}`);
    execFileSync('mkfifo', [fifo]);
    const big = profileFile(`{"defaultAction": "SCMP_ACT_ALLOW", "comment": "${'x'.repeat(5 * 1024 * 1024)}"}`);
    const cases: [string, RegExp][] = [
      [fifo, /: not a regular file \(a FIFO\)\n$/],
      ['/dev/zero', /: not a regular file\n$/],
      ['/', /: not a regular file \(a directory\)\n$/],
      [big, /: too large \(\d+ bytes; at most 4194304\)\n$/],
    ];
    for (const [file, message] of cases) {
      const r = await nsbox(['--seccomp', file, suite.root(), 'true']);
      expect(r.stderr).toMatch(new RegExp(`^nsbox: seccomp profile ${file}: `));
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(125);
    }
  });

  it('refuses a profile that blocks what nsbox runs after installing it, naming the calls (no silent 139)', async () => {
    const cases: [unknown, RegExp][] = [
      [{ defaultAction: 'SCMP_ACT_ERRNO' }, /^write, exit_group, .*setresuid, .*capset, .*execve$/],
      [{ defaultAction: 'SCMP_ACT_KILL_PROCESS' }, /^write, exit_group, .*execve$/],
      [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['execve'], action: 'SCMP_ACT_KILL' }] }, /^execve$/],
      [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['write'], action: 'SCMP_ACT_ERRNO' }] }, /^write$/],
      [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['capset'], action: 'SCMP_ACT_TRAP' }] }, /^capset$/],
    ];
    for (const [profile, calls] of cases) {
      const f = profileFile(profile);
      // --user 1000: the identity steps run after the filter when there is no no_new_privs.
      const r = await nsbox(['--seccomp', f, '--no-new-privileges=false', '--user', '1000', suite.root(), 'true']);
      const m =
        /^nsbox: seccomp profile (\S+) blocks (.*), which nsbox needs after installing the filter to start the command \(allow them in the profile\)\n$/.exec(
          r.stderr,
        );
      expect(m?.[1], r.stderr).toBe(f);
      expect(m?.[2]).toMatch(calls);
      expect(r.code).toBe(125);
    }
    // What the command does after exec is its business: a profile that blocks only that is taken.
    const f = profileFile({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['getcwd'], action: 'SCMP_ACT_ERRNO' }],
    });
    const r = await nsbox(['--seccomp', f, suite.root(), 'sh', '-c', 'pwd; echo done']);
    expect(r.stdout).toMatch(/done/);
  });

  it('rejects a missing file and a filter longer than the kernel takes', async () => {
    let r = await nsbox(['--seccomp', '/nonexistent.json', suite.root(), 'true']);
    expect(r.stderr).toBe('nsbox: seccomp profile /nonexistent.json: no such file\n');
    expect(r.code).toBe(125);
    const names = [...arch.byName.keys()];
    const huge = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        {
          names,
          action: 'SCMP_ACT_ERRNO',
          args: [0, 1, 2, 3, 4].map((index) => ({ index, value: 0x1_0000_0000 + index, op: 'SCMP_CMP_GT' })),
        },
      ],
    };
    r = await nsbox(['--seccomp', profileFile(huge), suite.root(), 'true']);
    expect(r.stderr).toMatch(/^nsbox: seccomp filter too long: \d+ instructions \(the kernel takes 4096\)\n$/);
    expect(r.code).toBe(125);
  });

  it('builds filters for aarch64 too: its audit arch, its numbers, no x32 check', () => {
    const a = archNamed('aarch64');
    expect([
      a.byName.get('openat'),
      a.byName.get('mount'),
      a.byName.get('clone3'),
      a.byName.get('listns'),
      a.byName.get('open'),
    ]).toEqual([56, 40, 435, 470, undefined]);
    const f = compile(toPolicy(DEFAULT_PROFILE, a, new Set()));
    const insn = (i: number) => [
      f.readUInt16LE(i * 8),
      f.readUInt8(i * 8 + 2),
      f.readUInt8(i * 8 + 3),
      f.readUInt32LE(i * 8 + 4),
    ];
    expect(insn(0)).toEqual([0x20, 0, 0, 4]); // A = arch
    expect(insn(1)[0]).toBe(0x15);
    expect(insn(1)[3]).toBe(0xc00000b7); // AUDIT_ARCH_AARCH64
    expect(insn(2)).toEqual([0x20, 0, 0, 0]); // A = nr
    expect(insn(3)[0]).toBe(0x25); // straight to the ENOSYS check: no x32 bit on arm64
    expect(insn(3)[3]).toBe(470);
    const x = compile(toPolicy(DEFAULT_PROFILE, archNamed('x86_64'), new Set()));
    expect(x.readUInt32LE(12)).toBe(0xc000003e); // AUDIT_ARCH_X86_64
    expect(x.readUInt32LE(3 * 8 + 4)).toBe(0x40000000); // the x32 bit
  });

  it('compiles the default profile to a small filter', () => {
    const { filter } = seccompFilter(DEFAULT_PROFILE);
    expect(filter.length % 8).toBe(0);
    expect(filter.length / 8).toBeLessThan(300);
  });
});
