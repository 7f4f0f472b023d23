// No line over 120 characters in the code nsbox ships (src/, native/, scripts/, bench/): Biome formats
// what it can, and this catches what it cannot break (long strings, comments, C).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const files = execFileSync('git', ['ls-files', 'src', 'native', 'scripts', 'bench'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => /\.(ts|js|mjs|cjs|c|h)$/.test(f));
const long = files.flatMap((f) =>
  readFileSync(f, 'utf8')
    .split('\n')
    .map((line, i) => ({ f, n: i + 1, len: line.length }))
    .filter((l) => l.len > 120),
);
for (const l of long) console.error(`${l.f}:${l.n}: ${l.len} characters (at most 120)`);
process.exit(long.length ? 1 : 0);
