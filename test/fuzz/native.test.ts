// nsbox/native is public: plans and arguments from any JavaScript must be refused by the addon's
// own checks (a TypeError or RangeError), never crash the process or start a child doing nonsense.
// The fuzz runs in a process of its own, in an empty scratch directory (its junk ops use
// relative paths): nothing may appear there.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = resolve(__dirname, 'native-fuzz.mjs');

describe('nsbox/native fuzz', () => {
  for (const seed of [1, 2]) {
    it(`malformed plans and arguments are refused (seed ${seed})`, () => {
      const dir = mkdtempSync(resolve(tmpdir(), 'nsbox-native-fuzz-'));
      try {
        const out = execFileSync(process.execPath, [SCRIPT, String(seed)], {
          cwd: dir,
          encoding: 'utf8',
          timeout: 120_000,
        });
        const r = JSON.parse(out.trim().split('\n').pop()!) as { counts: Record<string, number>; failures: string[] };
        console.log(`fuzz native seed ${seed}: ${JSON.stringify(r.counts)}`);
        expect(r.failures).toEqual([]);
        expect(r.counts.total).toBeGreaterThan(3000);
        expect(r.counts.wellFormedTaken).toBe(1);
        expect(readdirSync(dir)).toEqual([]);
      } finally {
        rmdirSync(dir);
      }
    }, 150_000);
  }
});
