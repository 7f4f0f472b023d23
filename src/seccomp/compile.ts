// Policy -> seccomp BPF. The filter checks the architecture, refuses the x32 ABI, answers ENOSYS
// for syscalls newer than the table (so libc falls back), then finds the syscall's rules with a
// binary search over number ranges; rules with argument checks get a block of their own.
import type { Arch } from './arch.js';
import { Program, type Label } from './bpf.js';

export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

export const ENOSYS = 38;
export const EPERM = 1;

export type CmpOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'masked_eq';

export interface ArgCheck {
  index: number;
  op: CmpOp;
  /** For masked_eq: the mask. */
  value: bigint;
  /** For masked_eq: what the masked argument must equal. */
  valueTwo: bigint;
  /** Compare the low 32 bits only (the kernel ignores the rest). */
  low32?: boolean;
}

export interface Rule {
  /** SECCOMP_RET_* value, e.g. RET.ERRNO | EPERM. */
  action: number;
  /** All must hold; none: the rule always matches. */
  args: ArgCheck[];
}

export interface Policy {
  arch: Arch;
  defaultAction: number;
  /** For another architecture or the x32 ABI. */
  badArchAction: number;
  /** Rules by syscall number, tried in order; the first that matches decides. */
  syscalls: Map<number, Rule[]>;
}

const OFF_NR = 0,
  OFF_ARCH = 4;
const argLo = (i: number) => 16 + 8 * i;
const argHi = (i: number) => 20 + 8 * i;

const lo32 = (v: bigint) => Number(v & 0xffffffffn);
const hi32 = (v: bigint) => Number((v >> 32n) & 0xffffffffn);

export function compile(policy: Policy): Buffer {
  const p = new Program();
  const rets = new Map<number, Label>();
  const retLabel = (action: number): Label => {
    action >>>= 0;
    let l = rets.get(action);
    if (!l) rets.set(action, (l = p.label()));
    return l;
  };
  const deflt = retLabel(policy.defaultAction);
  const bad = retLabel(policy.badArchAction);
  const { arch } = policy;

  const checked = p.label();
  p.ld(OFF_ARCH);
  p.jump('jeq', arch.audit, checked, bad);
  p.bind(checked);
  p.ld(OFF_NR);
  if (arch.x32Bit) {
    const native = p.label();
    p.jump('jge', arch.x32Bit, bad, native);
    p.bind(native);
  }
  const known = p.label();
  p.jump('jgt', arch.maxNr, retLabel(RET.ERRNO | ENOSYS), known);
  p.bind(known);

  // Where each syscall number goes: straight to a return, or to its own block of argument checks.
  const blocks = new Map<number, Label>();
  const target = (nr: number): Label => {
    const rules = policy.syscalls.get(nr);
    if (!rules || rules.length === 0) return deflt;
    if (rules[0].args.length === 0) return retLabel(rules[0].action);
    let l = blocks.get(nr);
    if (!l) blocks.set(nr, (l = p.label()));
    return l;
  };
  const ranges: { start: number; to: Label }[] = [];
  for (let nr = 0; nr <= arch.maxNr; nr++) {
    const to = target(nr);
    if (ranges.length === 0 || ranges[ranges.length - 1].to !== to) ranges.push({ start: nr, to });
  }
  searchTree(p, ranges, 0, ranges.length - 1);

  for (const [nr, l] of blocks) {
    p.bind(l);
    ruleBlock(p, policy.syscalls.get(nr)!, retLabel, deflt);
  }
  for (const [action, l] of rets) {
    p.bind(l);
    p.ret(action);
  }
  return p.assemble();
}

/** A = nr; jump to the range holding it. Emits the left subtree right after its parent. */
function searchTree(p: Program, ranges: { start: number; to: Label }[], lo: number, hi: number): void {
  if (lo === hi) {
    p.ja(ranges[lo].to);
    return;
  }
  const mid = (lo + hi + 1) >> 1;
  const left = lo === mid - 1 ? ranges[lo].to : p.label();
  const right = mid === hi ? ranges[hi].to : p.label();
  p.jump('jge', ranges[mid].start, right, left);
  if (lo !== mid - 1) {
    p.bind(left);
    searchTree(p, ranges, lo, mid - 1);
  }
  if (mid !== hi) {
    p.bind(right);
    searchTree(p, ranges, mid, hi);
  }
}

function ruleBlock(p: Program, rules: Rule[], retLabel: (a: number) => Label, deflt: Label): void {
  for (const rule of rules) {
    const fail = p.label();
    for (const c of rule.args) {
      const pass = p.label();
      check(p, c, pass, fail);
      p.bind(pass);
    }
    p.ja(retLabel(rule.action));
    p.bind(fail);
    if (rule.args.length === 0) return; // an unconditional rule ends the list
  }
  p.ja(deflt);
}

/** Jumps to `pass` when the 64-bit (or low 32-bit) argument compares true, else to `fail`. */
function check(p: Program, c: ArgCheck, pass: Label, fail: Label): void {
  const v = c.op === 'masked_eq' ? c.valueTwo : c.value;
  const vlo = lo32(v),
    vhi = hi32(v);
  const loadLo = () => {
    p.ld(argLo(c.index));
    if (c.op === 'masked_eq') p.and(lo32(c.value));
  };
  // Decide on the high word first: `sameHi` is reached when the high words are equal.
  const high = (onGreater: Label, onLess: Label): void => {
    if (c.low32) return;
    p.ld(argHi(c.index));
    const sameHi = p.label(),
      notGreater = p.label();
    p.jump('jgt', vhi, onGreater, notGreater);
    p.bind(notGreater);
    p.jump('jeq', vhi, sameHi, onLess);
    p.bind(sameHi);
  };
  const highEq = (onDiffer: Label): void => {
    if (c.low32) return;
    p.ld(argHi(c.index));
    if (c.op === 'masked_eq') p.and(hi32(c.value));
    const same = p.label();
    p.jump('jeq', vhi, same, onDiffer);
    p.bind(same);
  };
  switch (c.op) {
    case 'eq':
    case 'masked_eq':
      highEq(fail);
      loadLo();
      return p.jump('jeq', vlo, pass, fail);
    case 'ne':
      highEq(pass);
      loadLo();
      return p.jump('jeq', vlo, fail, pass);
    case 'gt':
      high(pass, fail);
      loadLo();
      return p.jump('jgt', vlo, pass, fail);
    case 'ge':
      high(pass, fail);
      loadLo();
      return p.jump('jge', vlo, pass, fail);
    case 'lt':
      high(fail, pass);
      loadLo();
      return p.jump('jge', vlo, fail, pass);
    case 'le':
      high(fail, pass);
      loadLo();
      return p.jump('jgt', vlo, fail, pass);
  }
}
