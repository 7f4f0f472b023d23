// A pool's fills run one plan but for a few values: the sandbox's id (its hostname, its cgroups' paths), its
// hold FIFO and its pipes. The first fill's plan is kept; a later one is made from it by putting its own values
// into the steps that carry them, once the second fill's plan, compiled afresh, came out the same that way (and
// again every CHECK_EVERY fills). A step that differs in any other way turns the template off for good.
import type { PlanOp } from '../native.js';
import { encode, type Encoded } from './encode.js';
import { dup2 } from './ops.js';
import type { Step } from './steps.js';
import { wire } from './wire.js';

/** What differs from one fill to the next. */
export interface FillValues {
  id: string;
  fifo: string;
  /** The fds that become the child's 0, 1 and 2. */
  fds: readonly number[];
}

/** A compiled fresh plan is compared with a made one this often. */
const CHECK_EVERY = 64;

interface Base<X> {
  values: FillValues;
  plan: Encoded;
  bytes: Buffer;
  /** Where op i starts in `bytes`; one more for the end. */
  offsets: number[];
  extra: X;
}

/** Made plans: `extra` is what the caller kept beside the first plan (what it derived from it). */
export class PlanTemplate<X> {
  private base?: Base<X>;
  /** The ops that differ between two fills (known from the second). */
  private varying?: number[];
  private off = false;
  private made = 0;

  /** The plan for `v`, or undefined: compile it, and tell learn(). */
  make(v: FillValues): { plan: Encoded; bytes: Buffer; extra: X } | undefined {
    if (this.off || !this.base || !this.varying || !usable(v)) return undefined;
    if (++this.made % CHECK_EVERY === 0) return undefined;
    try {
      return this.patch(this.base, this.varying, v);
    } catch {
      this.stop();
      return undefined;
    }
  }

  /** A plan compiled fresh for `v`: the first is kept; each later one must equal what make() gives. */
  learn(v: FillValues, plan: Encoded, bytes: Buffer, extra: X): void {
    try {
      this.check(v, plan, bytes, extra);
    } catch {
      this.stop();
    }
  }

  private check(v: FillValues, plan: Encoded, bytes: Buffer, extra: X): void {
    if (this.off || !usable(v)) return;
    const base = this.base;
    if (!base) {
      this.base = { values: v, plan, bytes, offsets: opOffsets(bytes), extra };
      return;
    }
    if (base.plan.ops.length !== plan.ops.length || base.values.fds.length !== v.fds.length) return this.stop();
    this.varying ??= base.plan.ops.flatMap((o, i) => (sameOp(o, plan.ops[i]) ? [] : [i]));
    const made = this.patch(base, this.varying, v);
    if (!made?.bytes.equals(bytes) || !made || !sameSteps(made.plan.steps, plan.steps)) this.stop();
  }

  private stop(): void {
    this.off = true;
    this.base = undefined;
  }

  private patch(base: Base<X>, varying: number[], v: FillValues) {
    const steps = base.plan.steps.slice();
    const ops: PlanOp[] = [];
    for (const i of varying) {
      const s = patchStep(base.plan.steps[i], base.values, v);
      if (!s) return undefined;
      const encoded = encode([s]).ops;
      if (encoded.length !== 1 || base.plan.ops[i].alt) return undefined; // no fallbacks in a varying step
      steps[i] = s;
      ops.push(encoded[0]);
    }
    // The new ops' bytes in one go, each spliced in for the base's.
    const fresh = ops.length ? wire(ops) : Buffer.alloc(4);
    const at = opOffsets(fresh);
    const pieces: Buffer[] = [];
    let from = 0;
    varying.forEach((i, k) => {
      pieces.push(base.bytes.subarray(from, base.offsets[i]), fresh.subarray(at[k], at[k + 1]));
      from = base.offsets[i + 1];
    });
    pieces.push(base.bytes.subarray(from));
    // The addon takes the bytes; the ops as objects are only for the array form (spawnPlan), never used here.
    const plan: Encoded = { ops: [] as PlanOp[], steps };
    return { plan, bytes: Buffer.concat(pieces), extra: base.extra };
  }
}

/** Pipes above 2 (as a pool's are): the plan's stdio steps then have one shape (ops.stdioOps). */
const usable = (v: FillValues) => v.fds.every((fd) => fd > 2);

/** A step with the base's values replaced by v's: in its strings, and the source of a stdio dup2. */
function patchStep(s: Step, a: FillValues, v: FillValues): Step | undefined {
  if (s.kind === 'dup2') {
    const k = a.fds.indexOf(s.from);
    return k < 0 ? undefined : dup2(v.fds[k], s.to);
  }
  const swap = (x: string) => x.replaceAll(a.id, v.id).replaceAll(a.fifo, v.fifo);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(s)) {
    if (typeof value === 'string') out[key] = swap(value);
    else if (typeof value === 'number' || typeof value === 'boolean' || value === undefined) out[key] = value;
    else if (Array.isArray(value) && value.every((x) => typeof x === 'string')) out[key] = value.map(swap);
    else return undefined; // nothing else varies between fills: a step that does is not for a template
  }
  return out as unknown as Step;
}

function sameOp(a: PlanOp, b: PlanOp): boolean {
  const same = <T>(x: readonly T[] = [], y: readonly T[] = []) =>
    x.length === y.length && x.every((e, i) => e === y[i]);
  return a.op === b.op && (a.alt ?? 0) === (b.alt ?? 0) && same(a.s, b.s) && same(a.n, b.n) && sameBytes(a.b, b.b);
}

const sameBytes = (a?: Buffer, b?: Buffer) => (a && b ? a.equals(b) : a === b);

/** Field by field, fallbacks and a seccomp program's bytes included (only when a made plan is checked). */
const sameSteps = (a: readonly Step[], b: readonly Step[]) => {
  const text = (x: readonly Step[]) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
  return text(a) === text(b);
};

/** Where each op of a plan's bytes (src/plan/wire.ts) starts, and where the last ends. */
function opOffsets(bytes: Buffer): number[] {
  const u32 = (at: number) => bytes.readUInt32LE(at);
  const out: number[] = [];
  let at = 4;
  for (let i = u32(0); i > 0; i--) {
    out.push(at);
    const ns = u32(at + 8),
      nn = u32(at + 12),
      nb = u32(at + 16);
    at += 20;
    for (let j = 0; j < ns; j++) at += 5 + u32(at);
    at += nn * 8 + (nb ? nb - 1 : 0);
  }
  out.push(at);
  return out;
}
