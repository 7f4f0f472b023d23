// The op codes and the slot table are shared with native/plan.h: checked here, not kept in sync by hand.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { encode, OP, PLAN_SLOTS } from '../../dist/plan/encode.js';
import * as op from '../../dist/plan/ops.js';

const header = readFileSync(resolve(__dirname, '../../native/plan.h'), 'utf8');

it('has the op codes of native/plan.h', () => {
  const codes = Object.fromEntries(
    [...header.matchAll(/^\s*OP_([A-Z_0-9]+)\s*=\s*(\d+),/gm)].map((m) => [m[1], Number(m[2])]),
  );
  expect(codes).toEqual(OP);
});

it('has the slot table size of native/plan.h', () => {
  expect(Number(/#define PLAN_SLOTS (\d+)/.exec(header)?.[1])).toBe(PLAN_SLOTS);
});

it('flattens a fallback after its step and keeps the step behind each op', () => {
  const primary = op.orElse(op.fsmount('sysfs', [], 3, 1, 'mount sysfs'), [op.openTree('/sys', 3, true)]);
  const { ops, steps } = encode([primary, op.caps(1n << 33n, 1n, 1n, 0n, 0n)]);
  expect(ops).toEqual([
    { op: OP.FSMOUNT, s: ['sysfs'], n: [3, 1], alt: 1 },
    { op: OP.OPEN_TREE, s: ['/sys'], n: [3, 1] },
    { op: OP.CAPS, n: [0, 2, 1, 0, 1, 0, 0, 0, 0, 0] },
  ]);
  expect(steps.map((s: { desc: string }) => s.desc)).toEqual([
    'mount sysfs',
    'open /sys for a bind mount',
    'set capabilities',
  ]);
});
