// The native architectures a filter is built for: their audit id and syscall table.
import { AARCH64_RUNS, X86_64_RUNS } from './tables.js';

export type ArchName = 'x86_64' | 'aarch64';

export interface Arch {
  name: ArchName;
  /** AUDIT_ARCH_* as seccomp_data.arch reports it. */
  audit: number;
  /** Names the profile formats use for it (OCI, libseccomp, Go). */
  aliases: string[];
  byName: Map<string, number>;
  /** The highest number in the table: anything above is newer than nsbox and gets ENOSYS. */
  maxNr: number;
  /** x86_64 only: syscall numbers with this bit set are the x32 ABI. */
  x32Bit?: number;
}

function table(runs: [number, string][]): Map<string, number> {
  const m = new Map<string, number>();
  for (const [first, names] of runs)
    names
      .trim()
      .split(/\s+/)
      .forEach((n, i) => m.set(n, first + i));
  return m;
}

function make(name: ArchName, audit: number, aliases: string[], runs: [number, string][], x32Bit?: number): Arch {
  const byName = table(runs);
  return { name, audit, aliases, byName, maxNr: Math.max(...byName.values()), x32Bit };
}

const cache: Partial<Record<ArchName, Arch>> = {};

export function arch(name: ArchName): Arch {
  return (cache[name] ??=
    name === 'x86_64'
      ? make('x86_64', 0xc000003e, ['x86_64', 'amd64', 'SCMP_ARCH_X86_64'], X86_64_RUNS, 0x40000000)
      : make('aarch64', 0xc00000b7, ['aarch64', 'arm64', 'SCMP_ARCH_AARCH64'], AARCH64_RUNS));
}

/** The architecture this process runs on, or an error naming it. */
export function nativeArch(): Arch {
  if (process.arch === 'x64') return arch('x86_64');
  if (process.arch === 'arm64') return arch('aarch64');
  throw new Error(`seccomp: no syscall table for ${process.arch} (nsbox filters x86_64 and aarch64)`);
}

/**
 * Arguments the kernel reads as 32 bits although they travel in 64-bit registers: compare only
 * the low word, or `socket(40 | 1 << 32)` would slip past a check for 40 and still make AF_VSOCK.
 */
export const ARG32: Record<string, number[]> = {
  socket: [0, 1, 2],
  socketpair: [0, 1, 2],
  personality: [0],
  clone: [0], // kernel_clone_args takes lower_32_bits(clone_flags)
  unshare: [0],
  setns: [1],
  ioctl: [1],
  fcntl: [1],
  prctl: [0],
  kill: [1],
  tgkill: [2],
};
