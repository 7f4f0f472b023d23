// PlanTemplate (src/plan/template.ts): a pool fill's plan made from the first fill's, only once a second
// fill's fresh plan came out the same way, and never when anything but the id, FIFO and pipes differs.
import { expect, it } from 'vitest';
import { encode } from '../../dist/plan/encode.js';
import * as op from '../../dist/plan/ops.js';
import { PlanTemplate } from '../../dist/plan/template.js';
import { wire } from '../../dist/plan/wire.js';

type Values = { id: string; fifo: string; fds: number[] };

/** A plan shaped like a fill's: stdio, a cgroup to enter, a hostname, the hold FIFO; `root` as given. */
function plan(v: Values, root = '/srv/root') {
  const steps = [
    ...op.stdioOps(v.fds),
    op.writeFile(`/sys/fs/cgroup/pids/nsbox/${v.id}.42.7/tasks`, '0', `enter cgroup ${v.id}`),
    op.mkdir(root),
    op.sethostname(v.id),
    op.holdOpen(v.fifo, 3),
  ];
  const encoded = encode(steps);
  return { encoded, bytes: wire(encoded.ops) };
}

const values = (i: number): Values => ({
  id: `${i}`.repeat(12).slice(0, 12),
  fifo: `/dev/shm/nsbox-pool-x/${i * 7}`,
  fds: [20 + i, 30 + i, 40 + i],
});

it('makes nothing until a second fresh plan matched, then plans equal to fresh ones', () => {
  const t = new PlanTemplate<string>();
  expect(t.make(values(1))).toBeUndefined();
  const a = plan(values(1));
  t.learn(values(1), a.encoded, a.bytes, 'creds');
  expect(t.make(values(2))).toBeUndefined(); // one plan is not enough to know what varies
  const b = plan(values(2));
  t.learn(values(2), b.encoded, b.bytes, 'creds');
  for (const i of [3, 4, 12]) {
    const made = t.make(values(i));
    const fresh = plan(values(i));
    expect(made?.bytes.equals(fresh.bytes)).toBe(true);
    expect(made?.plan.steps).toEqual(fresh.encoded.steps);
    expect(made?.extra).toBe('creds');
  }
});

it('turns itself off when a plan differs in anything else', () => {
  const t = new PlanTemplate<string>();
  const a = plan(values(1));
  t.learn(values(1), a.encoded, a.bytes, '');
  const b = plan(values(2), '/srv/other');
  t.learn(values(2), b.encoded, b.bytes, '');
  expect(t.make(values(3))).toBeUndefined();
  const c = plan(values(3));
  t.learn(values(3), c.encoded, c.bytes, '');
  expect(t.make(values(4))).toBeUndefined();
});

it('is not used for pipes among fds 0-2 (the stdio steps take another shape then)', () => {
  const t = new PlanTemplate<string>();
  for (const i of [1, 2]) {
    const p = plan(values(i));
    t.learn(values(i), p.encoded, p.bytes, '');
  }
  expect(t.make({ ...values(3), fds: [1, 30, 40] })).toBeUndefined();
  expect(t.make(values(3))).toBeDefined();
});
