// A filter that blocks what the child itself still runs after installing it (execve above all)
// would end the start in silence: the child can neither exec nor report the failure (a denied
// write), and a denied exit_group leaves it to crash. So before clone, the compiled filter is run
// on the syscalls the plan makes after its seccomp step, and a profile that blocks one is refused.
import { endianness } from 'node:os';
import { NsboxError } from '../errors.js';
import type { Step } from '../plan/steps.js';
import { nativeArch, type Arch } from './arch.js';
import { RET } from './compile.js';

interface Call {
  name: string;
  args?: number[];
}

const PR_SET_DUMPABLE = 4,
  PR_CAPBSET_DROP = 24,
  PR_CAP_AMBIENT = 47;

/** The reaper of --init (init_loop in native/child.c), and its command until it is released. */
const INIT_CALLS = [
  'pipe2',
  'clone',
  'read',
  'close',
  'close_range',
  'rt_sigprocmask',
  'rt_sigtimedwait',
  'wait4',
  'kill',
  'getpid',
];

/** What native/child.c calls for each step (a failed step: write to the error pipe, then exit_group). */
function callsOf(o: Step): Call[] {
  switch (o.kind) {
    case 'exec':
    case 'heldExec':
      return [{ name: 'execve' }];
    case 'setgroups':
      return [{ name: 'setgroups' }];
    case 'setresgid':
      return [{ name: 'setresgid', args: [o.gid, o.gid, o.gid] }];
    case 'setresuid':
      return [{ name: 'setresuid', args: [o.uid, o.uid, o.uid] }];
    case 'caps':
      return [
        { name: 'capget' },
        { name: 'capset' },
        { name: 'prctl', args: [PR_CAPBSET_DROP] },
        { name: 'prctl', args: [PR_CAP_AMBIENT] },
      ];
    case 'prctl':
      return [{ name: 'prctl', args: [o.option, ...o.args].slice(0, 5) }];
    case 'chdir':
      return [{ name: 'chdir' }];
    case 'chdirInRoot':
    case 'heldChdir':
      return ['open', 'openat2', 'fchdir', 'getcwd', 'close'].map((name) => ({ name }));
    case 'cloexecFrom':
      return [{ name: 'close_range' }];
    case 'close':
    case 'closeSlots':
      return [{ name: 'close' }];
    case 'closeInherited':
      return [{ name: 'close_range' }];
    case 'setsid':
      return [{ name: 'setsid' }];
    case 'umask':
      return [{ name: 'umask' }];
    case 'setTty':
      return [{ name: 'ioctl' }];
    case 'dup2':
      return [{ name: 'dup2' }, { name: 'dup3' }];
    case 'setrlimit':
      return [{ name: 'prlimit64' }];
    case 'init':
      return [{ name: 'prctl', args: [PR_SET_DUMPABLE, 0] }, ...INIT_CALLS.map((name) => ({ name }))];
    default:
      return [];
  }
}

/**
 * What a classic-BPF seccomp program returns for one syscall (arguments as given, the rest 0), or
 * undefined for an instruction this evaluator does not know (src/seccomp/bpf.ts emits none such).
 */
export function evaluate(filter: Buffer, arch: number, nr: number, args: number[] = []): number | undefined {
  const le = endianness() === 'LE';
  const data = Buffer.alloc(64);
  const w32 = (v: number, off: number) => (le ? data.writeUInt32LE(v >>> 0, off) : data.writeUInt32BE(v >>> 0, off));
  w32(nr, 0);
  w32(arch, 4);
  args.forEach((a, i) => {
    const v = BigInt.asUintN(64, BigInt(a));
    if (le) data.writeBigUInt64LE(v, 16 + 8 * i);
    else data.writeBigUInt64BE(v, 16 + 8 * i);
  });
  const insns = filter.length >> 3;
  let a = 0;
  for (let pc = 0, steps = 0; pc >= 0 && pc < insns && steps < 1 << 16; steps++) {
    const at = pc * 8;
    const code = le ? filter.readUInt16LE(at) : filter.readUInt16BE(at);
    const jt = filter[at + 2],
      jf = filter[at + 3];
    const k = le ? filter.readUInt32LE(at + 4) : filter.readUInt32BE(at + 4);
    pc++;
    switch (code) {
      case 0x20: // ld [k]
        if (k > 60 || k % 4) return undefined;
        a = le ? data.readUInt32LE(k) : data.readUInt32BE(k);
        break;
      case 0x54:
        a = (a & k) >>> 0;
        break;
      case 0x05:
        pc += k;
        break;
      case 0x06:
        return k >>> 0;
      case 0x15:
        pc += a === k ? jt : jf;
        break;
      case 0x25:
        pc += a > k ? jt : jf;
        break;
      case 0x35:
        pc += a >= k ? jt : jf;
        break;
      case 0x45:
        pc += (a & k) !== 0 ? jt : jf;
        break;
      default:
        return undefined;
    }
  }
  return undefined;
}

/** Lets the call through: allowed, or allowed and logged. */
const passes = (ret: number) => {
  const action = ret & 0xffff0000;
  return action === RET.ALLOW >>> 0 || action === RET.LOG >>> 0;
};

/** The syscalls a filter blocks of those a plan makes after it, by filter, architecture and calls: every
 *  start of the same profile asks the same question (a few hundred instructions interpreted per call). */
const verdicts = new Map<string, string[]>();

function blockedCalls(filter: Buffer, arch: Arch, calls: Call[]): string[] {
  const key = `${arch.audit}:${JSON.stringify(calls)}:${filter.toString('base64')}`;
  const known = verdicts.get(key);
  if (known) return known;
  const blocked = new Set<string>();
  for (const c of calls) {
    const nr = arch.byName.get(c.name);
    if (nr === undefined) continue; // not on this architecture (dup2 on aarch64)
    const ret = evaluate(filter, arch.audit, nr, c.args);
    if (ret === undefined) return []; // a program this check cannot read: leave it to the kernel
    if (!passes(ret)) blocked.add(c.name);
  }
  if (verdicts.size >= 64) verdicts.clear();
  verdicts.set(key, [...blocked]);
  return [...blocked];
}

/** Refuses a filter that blocks a syscall the plan still makes after installing it. */
export function checkFilterLetsPlanRun(steps: readonly Step[], arch: Arch = nativeArch()): void {
  const at = steps.findIndex((s) => s.kind === 'seccomp');
  const step = steps[at];
  if (step?.kind !== 'seccomp') return;
  const calls: Call[] = [{ name: 'write' }, { name: 'exit_group' }];
  for (const o of steps.slice(at + 1)) calls.push(...callsOf(o));
  const blocked = blockedCalls(step.filter, arch, calls);
  if (blocked.length === 0) return;
  throw new NsboxError(
    `seccomp profile ${step.source} blocks ${blocked.join(', ')}, which nsbox needs after installing` +
      ' the filter to ' +
      'start the command (allow them in the profile)',
    { step: 'seccomp', field: 'seccomp' },
  );
}
