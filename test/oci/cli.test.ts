// nsbox-runtime's command-line pieces that need no root: runc-style flags and signal names.
import { describe, expect, it } from 'vitest';
import { parseFlags, parseSignal } from '../../dist/oci/cli.js';
import { checkId } from '../../dist/oci/state.js';

describe('flags as runc takes them', () => {
  const known = { bundle: 'string', detach: 'bool', env: 'string[]' } as const;
  it('takes --flag value, --flag=value, -flag value, aliases and repeats', () => {
    expect(
      parseFlags(['--bundle', 'b', '-d', '-e', 'A=1', '--env=B=2', 'id', '--not-a-flag'], known, {
        d: 'detach',
        e: 'env',
      }),
    ).toEqual({ flags: { bundle: 'b', detach: true, env: ['A=1', 'B=2'] }, rest: ['id', '--not-a-flag'] });
    expect(parseFlags(['-bundle=x', '--detach=false', '--', '-id'], known).flags).toEqual({
      bundle: 'x',
      detach: false,
    });
    expect(parseFlags(['--', '-id'], known).rest).toEqual(['-id']);
  });
  it('refuses unknown flags and missing values', () => {
    expect(() => parseFlags(['--bogus'], known)).toThrow('unknown flag: --bogus');
    expect(() => parseFlags(['--bundle'], known)).toThrow('--bundle needs a value');
    expect(() => parseFlags(['--detach=maybe'], known)).toThrow('expected true or false');
  });
});

describe('signals', () => {
  it('takes 9, KILL and SIGKILL alike, and defaults to SIGTERM', () => {
    expect([parseSignal('9'), parseSignal('KILL'), parseSignal('SIGKILL'), parseSignal('kill')]).toEqual([9, 9, 9, 9]);
    expect(parseSignal(undefined)).toBe(15);
    expect([parseSignal('SIGRTMIN'), parseSignal('RTMIN+2'), parseSignal('SIGRTMAX')]).toEqual([34, 36, 64]);
  });
  it('refuses what is not a signal', () => {
    for (const s of ['0', '65', 'BOGUS', '-9', '9x', 'RTMAX+1']) expect(() => parseSignal(s)).toThrow(/invalid signal/);
  });
});

describe('container ids', () => {
  it("takes runc's ids and refuses paths", () => {
    expect(checkId('abc_DEF-1.2+3')).toBe('abc_DEF-1.2+3');
    for (const id of ['', '.', '..', 'a/b', '../x', 'a b', 'a\0b']) expect(() => checkId(id)).toThrow(/container id/);
  });
});
