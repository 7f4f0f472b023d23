// A filter that blocks what the child itself still runs after installing it (execve above all)
// would end the start in silence: the child can neither exec nor report the failure (a denied
// write), and a denied exit_group leaves it to crash. So before clone, the compiled filter is run
// on the syscalls the plan makes after its seccomp step, and a profile that blocks one is refused.
import { endianness } from 'node:os';
import { NsboxError } from '../errors.js';
import { OP, type Op } from '../plan/ops.js';
import { nativeArch, type Arch } from './arch.js';
import { RET } from './compile.js';

interface Call { name: string; args?: number[] }

const PR_CAPBSET_DROP = 24, PR_CAP_AMBIENT = 47;

/** What native/child.c calls for each step (a failed step: write to the error pipe, then exit_group). */
function callsOf(o: Op): Call[] {
  const n = o.n?.map(Number) ?? [];
  switch (o.op) {
    case OP.EXEC: return [{ name: 'execve' }];
    case OP.SETGROUPS: return [{ name: 'setgroups' }];
    case OP.SETRESGID: return [{ name: 'setresgid', args: [n[0], n[0], n[0]] }];
    case OP.SETRESUID: return [{ name: 'setresuid', args: [n[0], n[0], n[0]] }];
    case OP.CAPS: return [{ name: 'capget' }, { name: 'capset' }, { name: 'prctl', args: [PR_CAPBSET_DROP] },
      { name: 'prctl', args: [PR_CAP_AMBIENT] }];
    case OP.PRCTL: return [{ name: 'prctl', args: n.slice(0, 5) }];
    case OP.CHDIR: return [{ name: 'chdir' }];
    case OP.CLOSE_FDS: return [{ name: 'close_range' }];
    case OP.CLOSE: return [{ name: 'close' }];
    case OP.SETSID: return [{ name: 'setsid' }];
    case OP.UMASK: return [{ name: 'umask' }];
    case OP.SET_TTY: return [{ name: 'ioctl' }];
    case OP.DUP2: return [{ name: 'dup2' }, { name: 'dup3' }];
    case OP.SETRLIMIT: return [{ name: 'prlimit64' }];
    case OP.INIT:
      return ['clone', 'rt_sigprocmask', 'rt_sigtimedwait', 'wait4', 'kill', 'getpid'].map((name) => ({ name }));
    default: return [];
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
    const jt = filter[at + 2], jf = filter[at + 3];
    const k = le ? filter.readUInt32LE(at + 4) : filter.readUInt32BE(at + 4);
    pc++;
    switch (code) {
      case 0x20: // ld [k]
        if (k > 60 || k % 4) return undefined;
        a = le ? data.readUInt32LE(k) : data.readUInt32BE(k);
        break;
      case 0x54: a = (a & k) >>> 0; break;
      case 0x05: pc += k; break;
      case 0x06: return k >>> 0;
      case 0x15: pc += a === k ? jt : jf; break;
      case 0x25: pc += a > k ? jt : jf; break;
      case 0x35: pc += a >= k ? jt : jf; break;
      case 0x45: pc += (a & k) !== 0 ? jt : jf; break;
      default: return undefined;
    }
  }
  return undefined;
}

/** Lets the call through: allowed, or allowed and logged. */
const passes = (ret: number) => {
  const action = ret & 0xffff0000;
  return action === (RET.ALLOW >>> 0) || action === (RET.LOG >>> 0);
};

/** Refuses a filter (the plan's step at `at`) that blocks a syscall the plan still makes after it. */
export function checkFilterLetsPlanRun(ops: Op[], at: number, arch: Arch = nativeArch()): void {
  const step = ops[at];
  if (!step?.b) return;
  const calls: Call[] = [{ name: 'write' }, { name: 'exit_group' }];
  for (const o of ops.slice(at + 1)) calls.push(...callsOf(o));
  const blocked = new Set<string>();
  for (const c of calls) {
    const nr = arch.byName.get(c.name);
    if (nr === undefined) continue; // not on this architecture (dup2 on aarch64)
    const ret = evaluate(step.b, arch.audit, nr, c.args);
    if (ret === undefined) return; // a program this check cannot read: leave it to the kernel
    if (!passes(ret)) blocked.add(c.name);
  }
  if (blocked.size === 0) return;
  const source = /\((.*)\)$/.exec(step.desc)?.[1] ?? 'the profile';
  throw new NsboxError(
    `seccomp profile ${source} blocks ${[...blocked].join(', ')}, which nsbox needs after installing the filter to `
    + 'start the command (allow them in the profile)', { step: 'seccomp', field: 'seccomp' });
}
