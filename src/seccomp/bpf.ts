// A tiny classic-BPF assembler for seccomp filters: loads, AND, conditional jumps to labels,
// returns. Conditional jumps reach 255 instructions at most; farther ones become a short jump
// over two unconditional `ja` (32-bit offsets).
import { endianness } from 'node:os';

export interface Label {
  readonly id: number;
}

export type Cond = 'jeq' | 'jgt' | 'jge' | 'jset';

type Insn =
  | { kind: 'ld'; k: number }
  | { kind: 'and'; k: number }
  | { kind: 'jmp'; cond: Cond; k: number; t: Label; f: Label; long?: boolean }
  | { kind: 'ja'; to: Label }
  | { kind: 'ret'; k: number };

const CODE = {
  ld: 0x20, // BPF_LD | BPF_W | BPF_ABS
  and: 0x54, // BPF_ALU | BPF_AND | BPF_K
  ja: 0x05, // BPF_JMP | BPF_JA
  ret: 0x06, // BPF_RET | BPF_K
  jeq: 0x15,
  jgt: 0x25,
  jge: 0x35,
  jset: 0x45, // BPF_JMP | BPF_Jxx | BPF_K
} as const;

/** The kernel's limit on a filter's length (BPF_MAXINSNS). */
export const MAX_INSNS = 4096;

export class Program {
  private code: Insn[] = [];
  private labels = new Map<number, number>(); // label id -> index in code
  private nextId = 0;

  label(): Label {
    return { id: this.nextId++ };
  }

  /** The next instruction emitted is where `l` points. */
  bind(l: Label): void {
    if (this.labels.has(l.id)) throw new Error(`label ${l.id} bound twice`);
    this.labels.set(l.id, this.code.length);
  }

  /** A = 32-bit word at offset k of struct seccomp_data. */
  ld(k: number): void {
    this.code.push({ kind: 'ld', k });
  }
  and(k: number): void {
    this.code.push({ kind: 'and', k: k >>> 0 });
  }
  jump(cond: Cond, k: number, t: Label, f: Label): void {
    this.code.push({ kind: 'jmp', cond, k: k >>> 0, t, f });
  }
  ja(to: Label): void {
    this.code.push({ kind: 'ja', to });
  }
  ret(k: number): void {
    this.code.push({ kind: 'ret', k: k >>> 0 });
  }

  get length(): number {
    return this.code.length;
  }

  /** struct sock_filter[] in host byte order. */
  assemble(): Buffer {
    if (endianness() !== 'LE') throw new Error('seccomp: only little-endian hosts are supported');
    const at = (l: Label, pos: number[]): number => {
      const i = this.labels.get(l.id);
      if (i === undefined) throw new Error(`label ${l.id} never bound`);
      return pos[i];
    };
    // Widen the conditional jumps that cannot reach their targets until every one fits.
    let pos: number[];
    for (;;) {
      pos = [];
      let p = 0;
      for (const insn of this.code) {
        pos.push(p);
        p += insn.kind === 'jmp' && insn.long ? 3 : 1;
      }
      pos.push(p);
      let changed = false;
      this.code.forEach((insn, i) => {
        if (insn.kind !== 'jmp' || insn.long) return;
        const next = pos[i] + 1;
        const jt = at(insn.t, pos) - next,
          jf = at(insn.f, pos) - next;
        if (jt < 0 || jf < 0) throw new Error('seccomp: backward jump');
        if (jt > 255 || jf > 255) insn.long = changed = true;
      });
      if (!changed) break;
    }
    const total = pos[this.code.length];
    if (total > MAX_INSNS)
      throw new Error(`seccomp filter too long: ${total} instructions (the kernel takes ${MAX_INSNS})`);
    const buf = Buffer.alloc(total * 8);
    let o = 0;
    const put = (code: number, jt: number, jf: number, k: number) => {
      buf.writeUInt16LE(code, o);
      buf.writeUInt8(jt, o + 2);
      buf.writeUInt8(jf, o + 3);
      buf.writeUInt32LE(k >>> 0, o + 4);
      o += 8;
    };
    this.code.forEach((insn, i) => {
      const next = pos[i] + 1;
      switch (insn.kind) {
        case 'ld':
          return put(CODE.ld, 0, 0, insn.k);
        case 'and':
          return put(CODE.and, 0, 0, insn.k);
        case 'ret':
          return put(CODE.ret, 0, 0, insn.k);
        case 'ja':
          return put(CODE.ja, 0, 0, at(insn.to, pos) - next);
        case 'jmp':
          if (!insn.long) return put(CODE[insn.cond], at(insn.t, pos) - next, at(insn.f, pos) - next, insn.k);
          put(CODE[insn.cond], 0, 1, insn.k);
          put(CODE.ja, 0, 0, at(insn.t, pos) - (next + 1));
          return put(CODE.ja, 0, 0, at(insn.f, pos) - (next + 2));
      }
    });
    return buf;
  }
}
