// Run by test/fuzz/native.test.ts in a process of its own (a crash must not take vitest down):
// malformed plans and arguments for nsbox/native. Prints one JSON line of counts and failures.
import * as n from '../../dist/native.js';
import { wire } from '../../dist/plan/wire.js';

let seed = Number(process.argv[2] ?? 1);
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rnd() * a.length)];

// Well-formed ops of every kind (native/plan.h), harmless if they ever ran: relative junk paths.
const TEMPLATES = [
  { op: 0, s: ['none', 'fz-a', 'tmpfs', ''], n: [0] }, { op: 1, s: ['fz-b'], n: [0o755] }, { op: 2, s: ['fz-c'] },
  { op: 3, s: ['fz-d'], n: [0] }, { op: 4, s: ['fz'] }, { op: 5 }, { op: 6, n: [1, 1] }, { op: 7, s: ['fz-e'] },
  { op: 8, n: [7, 1024, 1024] }, { op: 9, n: [1, 0], s: ['fz-none', '/fz-none'] }, { op: 10, s: ['x', 'fz-f'] },
  { op: 11, s: ['fz-g'], n: [0o644] }, { op: 12, s: ['fz-h'], n: [0, 0, 0] }, { op: 14 }, { op: 15, n: [99, 0] },
  { op: 16, n: [0] }, { op: 17, n: [38, 1, 0, 0, 0] }, { op: 18, n: [] }, { op: 19, n: [65534] }, { op: 20, n: [65534] },
  { op: 21, n: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }, { op: 22, b: Buffer.from([6, 0, 0, 0, 0, 0, 0xff, 0x7f]) },
  { op: 23, n: [3] }, { op: 24, s: ['fz-i'], n: [0, 0] }, { op: 25, s: ['fz-j'], n: [0] }, { op: 27, n: [0o22] },
  { op: 28, s: ['fz-k', 'x'] }, { op: 29, n: [0] }, { op: 30, n: [99] }, { op: 31, s: ['fz-l'], n: [1, 4] },
  { op: 32, n: [1, 2] }, { op: 33, s: ['tmpfs'], n: [3, 0] }, { op: 34, n: [1, 2, 0] }, { op: 35, n: [1, 0, 0, 0] },
  { op: 36, n: [0, 0, 0] },
];

/** Kinds that take exactly their strings and numbers (and at least one of them). */
const FIXED = new Set([0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 15, 16, 19, 20, 21, 23, 24, 25, 27, 28, 29, 31, 32, 34, 35, 36]);

const JUNK = [undefined, null, NaN, Infinity, -Infinity, -1, -2, 1.5, 2 ** 31, 2 ** 53, 1e300, '1', 'a\0b', '', true, {}, [],
  () => 0, Symbol('s'), 10n, Buffer.alloc(3)];

/** One change that makes an op malformed. */
const MUTATIONS = [
  (o) => ({ ...o, op: pick([-1, 37, 99, 2 ** 31, 1.5, NaN, '9', null]) }),
  (o) => ({ ...o, s: pick(['str', 5, {}, { length: 3 }]) }),
  (o) => ({ ...o, n: pick(['str', 5, {}, { length: 3 }]) }),
  (o) => ({ ...o, s: [...(o.s ?? []), ...Array(o.op === 9 ? 5e6 : 70).fill('x')] }),
  (o) => ({ ...o, n: [...(o.n ?? []), ...Array(70).fill(0)] }),
  (o) => (o.s?.length ? { ...o, s: o.s.map((x, i) => (i === 0 ? pick([5, null, {}, 'a\0b', undefined]) : x)) } : { ...o, s: [5] }),
  (o) => (o.n?.length ? { ...o, n: o.n.map((x, i) => (i === 0 ? pick([NaN, Infinity, -5, 1.5, 1e300, '1', null]) : x)) } : { ...o, n: ['x'] }),
  // One argument fewer, for the kinds that take an exact number.
  (o) => (FIXED.has(o.op) ? (o.s?.length ? { ...o, s: o.s.slice(1) } : { ...o, n: o.n.slice(1) }) : { ...o, op: 99 }),
  (o) => ({ ...o, b: pick(['str', 5, {}, [1, 2], Buffer.alloc(0), Buffer.alloc(9)]) }),
  (o) => ({ ...o, alt: pick([-1, 1e6, 1.5, NaN, 'x']) }),
  () => ({ op: 9, n: [pick([0, 3, -1, 2 ** 31]), pick([-1, 5, 2 ** 31])], s: ['a'] }),
  () => ({ op: 22, b: Buffer.alloc(pick([7, 4097 * 8, 12])) }),
  () => ({ op: pick([24, 25, 31, 32, 33, 34, 35]), s: ['x'], n: [pick([64, -1, 1000]), 0, 0, 0] }),
  () => ({ op: 30, n: [3, pick([-1, -7, 2 ** 31])] }),
  () => pick([null, undefined, 5, 'op', [], true]),
];

const NS = n.CLONE.NEWUSER | n.CLONE.NEWNS | n.CLONE.NEWPID | n.CLONE.NEWNET | n.CLONE.NEWUTS | n.CLONE.NEWIPC;
const counts = { total: 0, TypeError: 0, RangeError: 0 };
const failures = [];
const show = (v) => { try { return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : typeof x === 'symbol' ? 'symbol' : x)).slice(0, 200); } catch { return String(v); } };

/** `what` is a function: the label is made only for a failure (some plans are millions of strings). */
function expectRefused(what, f) {
  counts.total++;
  try {
    const r = f();
    failures.push(`${what()}: accepted -> ${show(r)}`);
    if (r?.pidfd >= 0) n.pidfdSendSignal(r.pidfd, 9);
  } catch (e) {
    if ((e?.name === 'TypeError' || e?.name === 'RangeError') && /^\w+: /.test(e.message)) counts[e.name]++;
    else failures.push(`${what()}: ${e?.name}: ${e?.message}`);
  }
}

// Whole requests.
for (const req of [undefined, null, 5, 'x', [], {}, { flags: NS }, { flags: NS, ops: 'x' }, { flags: NS, ops: [] },
  { flags: NS, ops: { length: 2, 0: {}, 1: {} } }, { flags: -1, ops: [{ op: 14 }] }, { flags: 0x100, ops: [{ op: 14 }] },
  { flags: NaN, ops: [{ op: 14 }] }, { flags: NS, cgroupFd: 'x', ops: [{ op: 14 }] }, { flags: NS, cgroupFd: -3, ops: [{ op: 14 }] },
  { flags: NS, sync: 'yes', ops: [{ op: 14 }] }, { flags: NS | 0x00010000, ops: [{ op: 14 }] }]) {
  expectRefused(() => `request ${show(req)}`, () => n.spawn(req));
}

// Plans: well-formed ops around one malformed one.
for (let i = 0; i < 3000; i++) {
  const ops = Array.from({ length: Math.floor(rnd() * 4) }, () => structuredClone(pick(TEMPLATES)));
  const bad = pick(MUTATIONS)(structuredClone(pick(TEMPLATES)));
  if (ops.length === 0 && rnd() < 0.5) ops.push(structuredClone(pick(TEMPLATES)));
  ops.splice(Math.floor(rnd() * (ops.length + 1)), 0, bad);
  // A mutation that happens to leave a template well-formed is not a test of anything.
  expectRefused(() => `plan ${show(ops)}`, () => n.spawn({ flags: NS, ops }));
}

// The same malformed plans as one Buffer (src/plan/wire.ts): what the bytes cannot carry wire() refuses,
// the rest the addon's checks on the bytes refuse as they do on the objects.
seed += 7;
for (let i = 0; i < 2000; i++) {
  const ops = Array.from({ length: Math.floor(rnd() * 4) }, () => structuredClone(pick(TEMPLATES)));
  const bad = pick(MUTATIONS)(structuredClone(pick(TEMPLATES)));
  ops.splice(Math.floor(rnd() * (ops.length + 1)), 0, bad);
  expectRefused(() => `wire plan ${show(ops)}`, () => n.spawn({ flags: NS, ops: wire(ops) }));
}

/** The offsets of a wire plan's length and count fields (u32), with what each may be set to and still be refused. */
function fields(buf) {
  const f = [{ at: 0, to: [buf.readUInt32LE(0) + 1, 0, 65537, 2 ** 32 - 1] }];
  let at = 4;
  for (let i = 0, nops = buf.readUInt32LE(0); i < nops; i++) {
    const [ns, nn, blen] = [8, 12, 16].map((d) => buf.readUInt32LE(at + d));
    f.push({ at: at + 8, to: [2 ** 32 - 1, 2 ** 31, (1 << 22) + 1] }, { at: at + 12, to: [2 ** 32 - 1, 65] });
    if (blen) f.push({ at: at + 16, to: [blen + 1, blen - 1, 2 ** 32 - 1, ...(blen > 1 ? [1] : [])] });
    at += 20;
    for (let j = 0; j < ns; j++) {
      const len = buf.readUInt32LE(at);
      f.push({ at, to: [len + 1, len + 2, 2 ** 32 - 1, (1 << 20) + 1, ...(len ? [len - 1] : [])] });
      at += 5 + len;
    }
    at += nn * 8 + Math.max(blen - 1, 0);
  }
  return f;
}

// Well-formed plans as bytes, cut short anywhere, with bytes after the end, or with one length or count
// made wrong or oversized: all refused (never read past the Buffer, never a child).
const WELL = TEMPLATES.filter((o) => o.op !== 9);
for (let i = 0; i < 60; i++) {
  const buf = wire(Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => pick(WELL)));
  for (let cut = 0; cut < buf.length; cut += 1 + Math.floor(rnd() * 3)) {
    const b = Buffer.from(buf.subarray(0, cut));
    expectRefused(() => `wire cut at ${cut} of ${buf.toString('hex')}`, () => n.spawn({ flags: NS, ops: b }));
  }
  for (const extra of [1, 4, 20]) {
    const b = Buffer.concat([buf, Buffer.alloc(extra)]);
    expectRefused(() => `wire +${extra} bytes ${buf.toString('hex')}`, () => n.spawn({ flags: NS, ops: b }));
  }
  for (const { at, to } of fields(buf))
    for (const v of to) {
      const b = Buffer.from(buf);
      b.writeUInt32LE(v >>> 0, at);
      expectRefused(() => `wire u32 at ${at} = ${v} in ${buf.toString('hex')}`, () => n.spawn({ flags: NS, ops: b }));
    }
}
for (const b of [Buffer.alloc(0), Buffer.alloc(3), Buffer.from([1, 0, 0, 0]), new Uint8Array(24)]) {
  expectRefused(() => `wire ${Buffer.from(b).toString('hex')}`, () => n.spawn({ flags: NS, ops: b }));
}

// Single syscalls with junk numbers and strings: refused, or a plain errno error (never a crash).
// None that could change this host when given a valid value (sethostname, umount, pivot_root).
const calls = {
  waitPidfd: (a) => n.waitPidfd(a), pidfdOpen: (a) => n.pidfdOpen(a), pidfdSendSignal: (a) => n.pidfdSendSignal(a, 0),
  setns: (a) => n.setns(a, 0), flock: (a) => n.flock(a, 4), setWinsize: (a) => n.setWinsize(a, 1, 1),
  watchReadable: (a) => n.watchReadable(a, 5),
  // A bind to loopback let go at once; a connect to no socket.
  portInUse: (a) => n.portInUse(4, false, '127.0.0.1', a), unixRequest: (a) => n.unixRequest(a, '{}', 100),
  // Flags out of range: refused before any string is looked at.
  mountFlags: (a) => n.mount(null, a, 'tmpfs', 1e300),
};
for (const [name, f] of Object.entries(calls)) {
  for (const v of JUNK) {
    counts.total++;
    try {
      f(v);
      if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0)) failures.push(`${name}(${show(v)}): accepted`);
    } catch (e) {
      if (e?.name === 'TypeError' || e?.name === 'RangeError') counts[e.name]++;
      else if (e?.code && e?.syscall) counts.errno = (counts.errno ?? 0) + 1;
      else failures.push(`${name}(${show(v)}): ${e?.name}: ${e?.message}`);
    }
  }
}
// The control: a well-formed plan (exec of a path that does not exist) is taken and fails in the child.
try {
  const c = n.spawn({ flags: NS, ops: [{ op: 9, n: [1, 0], s: ['fz-none', '/fz-none'] }] });
  n.pidfdSendSignal(c.pidfd, 9);
  const w = n.spawn({ flags: NS, ops: wire([{ op: 9, n: [1, 0], s: ['fz-none', '/fz-none'] }]) });
  n.pidfdSendSignal(w.pidfd, 9);
  counts.wellFormedTaken = 1;
} catch (e) {
  failures.push(`a well-formed plan was refused: ${e.message}`);
}
console.log(JSON.stringify({ counts, failures: failures.slice(0, 30), failed: failures.length }));
