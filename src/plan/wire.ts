// A plan as one Buffer for the addon (read by read_wire in native/nsbox.c): one copy into C instead of a
// property read per op, string and number. Little-endian: u32 nops, then per op u32 kind, alt, ns, nn,
// nb; ns strings as (u32 byte length, UTF-8 bytes, a NUL); nn numbers as f64; nb - 1 raw bytes (nb is 0
// for an op without bytes: empty bytes are refused where no bytes are fine, as in the array form).
// The addon checks every count, length and number against OP_ARGS as it does for an array of ops.
import type { PlanOp } from '../native.js';

const NONE: readonly never[] = [];

/** Written into one scratch buffer (grown when a plan needs more), then copied out at its size. */
let scratch = Buffer.allocUnsafeSlow(64 * 1024);
let view = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);

function room(max: number): void {
  if (max <= scratch.length) return;
  scratch = Buffer.allocUnsafeSlow(max);
  view = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);
}

const isU32 = (x: unknown) => typeof x === 'number' && x >= 0 && x <= 0xffffffff && Number.isInteger(x);

/** What the bytes cannot carry is refused here (a number that is not one, an op code that is no u32);
 *  everything else the addon checks. */
function check(o: PlanOp, i: number): void {
  const bad = (what: string) => new TypeError(`wire: ops[${i}]${what}`);
  if (o === null || typeof o !== 'object') throw bad(' must be an object');
  if (!isU32(o.op)) throw new RangeError(`wire: ops[${i}].op must be a whole number from 0 to 4294967295`);
  if (o.alt !== undefined && !isU32(o.alt)) throw new RangeError(`wire: ops[${i}].alt must be a whole number`);
  if (o.s !== undefined && !(Array.isArray(o.s) && o.s.every((x) => typeof x === 'string')))
    throw bad('.s must be an array of strings');
  if (o.n !== undefined && !(Array.isArray(o.n) && o.n.every((x) => typeof x === 'number')))
    throw bad('.n must be an array of numbers');
  if (o.b !== undefined && !Buffer.isBuffer(o.b)) throw bad('.b must be a Buffer');
}

export function wire(ops: readonly PlanOp[]): Buffer {
  if (!Array.isArray(ops)) throw new TypeError('wire: ops must be an array');
  // An upper bound first (3 bytes per UTF-16 unit), so each string is written once, straight in.
  let max = 4;
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i];
    check(o, i);
    max += 20 + (o.n?.length ?? 0) * 8 + (o.b?.length ?? 0);
    for (const s of o.s ?? NONE) max += 5 + s.length * 3;
  }
  room(max);
  const buf = scratch,
    dv = view;
  dv.setUint32(0, ops.length, true);
  let at = 4;
  for (const o of ops) {
    const s = o.s ?? NONE,
      n = o.n ?? NONE;
    dv.setUint32(at, o.op, true);
    dv.setUint32(at + 4, o.alt ?? 0, true);
    dv.setUint32(at + 8, s.length, true);
    dv.setUint32(at + 12, n.length, true);
    dv.setUint32(at + 16, o.b ? o.b.length + 1 : 0, true);
    at += 20;
    for (const x of s) {
      const len = buf.write(x, at + 4);
      dv.setUint32(at, len, true);
      buf[at + 4 + len] = 0;
      at += 5 + len;
    }
    for (const x of n) {
      dv.setFloat64(at, x, true);
      at += 8;
    }
    if (o.b) at += o.b.copy(buf, at);
  }
  return Buffer.from(buf.subarray(0, at));
}
