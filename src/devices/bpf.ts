// The devices controller of cgroup v2 is an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE): given
// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } it returns 1 to allow.
// access_type is (access << 16) | type, with type 1 block, 2 char and access 1 mknod, 2 read, 4 write.
import type { DeviceRule } from './spec.js';

const TYPE = { b: 1, c: 2 } as const;
const ACCESS = { m: 1, r: 2, w: 4 } as const;

// Opcodes (linux/bpf.h).
const LDX_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT = 0x95;

type Insn = [code: number, dst: number, src: number, off: number, imm: number];

function encode(prog: Insn[]): Buffer {
  const b = Buffer.alloc(prog.length * 8);
  prog.forEach(([code, dst, src, off, imm], i) => {
    b.writeUInt8(code, i * 8);
    b.writeUInt8((src << 4) | dst, i * 8 + 1);
    b.writeInt16LE(off, i * 8 + 2);
    b.writeInt32LE(imm | 0, i * 8 + 4);
  });
  return b;
}

const accessBits = (a: string) => [...a].reduce((m, c) => m | ACCESS[c as keyof typeof ACCESS], 0);

/** A program that allows exactly what the rules allow (the first rule that matches allows). */
export function deviceProgram(rules: DeviceRule[]): Buffer {
  // r2 = type, r3 = access, r4 = major, r5 = minor
  const prog: Insn[] = [
    [LDX_W, 2, 1, 0, 0],
    [AND32_K, 2, 0, 0, 0xffff],
    [LDX_W, 3, 1, 0, 0],
    [RSH32_K, 3, 0, 0, 16],
    [LDX_W, 4, 1, 4, 0],
    [LDX_W, 5, 1, 8, 0],
  ];
  for (const r of rules) {
    const checks: Insn[] = [];
    if (r.type !== 'a') checks.push([JNE_K, 2, 0, 0, TYPE[r.type]]);
    const denied = ~accessBits(r.type === 'a' ? 'rwm' : r.access) & 7;
    if (denied) checks.push([MOV32_X, 1, 3, 0, 0], [AND32_K, 1, 0, 0, denied], [JNE_K, 1, 0, 0, 0]);
    if (r.type !== 'a' && r.major >= 0) checks.push([JNE_K, 4, 0, 0, r.major]);
    if (r.type !== 'a' && r.minor >= 0) checks.push([JNE_K, 5, 0, 0, r.minor]);
    // Each failed check jumps past this rule's "return 1".
    checks.forEach((c, i) => {
      if (c[0] === JNE_K) c[3] = checks.length - i - 1 + 2;
    });
    prog.push(...checks, [MOV64_K, 0, 0, 0, 1], [EXIT, 0, 0, 0, 0]);
  }
  prog.push([MOV64_K, 0, 0, 0, 0], [EXIT, 0, 0, 0, 0]);
  return encode(prog);
}
