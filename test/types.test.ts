// The published types, as a user's project sees them: strict, with the current TypeScript (7.x), and no
// `types` setting of its own. The README's spawn example must compile as it is, with typed events.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const REPO = resolve(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'nsbox-types-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function project(code: string): string {
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(REPO, join(dir, 'node_modules', 'nsbox'));
  symlinkSync(join(REPO, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
  writeFileSync(join(dir, 'package.json'), '{ "name": "user", "type": "module", "private": true }\n');
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, module: 'nodenext', target: 'es2022', noEmit: true },
      include: ['*.ts'],
    }),
  );
  writeFileSync(join(dir, 'main.ts'), code);
  const tsc = join(REPO, 'node_modules', 'typescript7', 'bin', 'tsc');
  try {
    return execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
  } catch (e) {
    return (e as { stdout: string }).stdout;
  }
}

it('the README spawn example and typed events compile under TypeScript 7, strict, with no types setting', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const example = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.includes('spawn({'));
  expect(example).toBeDefined();
  const code = `${example}
const other = spawn({ rootfs: 'host', command: ['true'], stdio: 'ignore' });
other.on('exit', (r) => { const s: 'ok' | 'exited' | 'signaled' | 'oom' | 'timeout' | 'cpu-limit' = r.status; void s; });
other.on('spawn', () => {});
// @ts-expect-error stdio 'ignore': the stream may be null
other.stdout.read();
`;
  expect(project(code)).toBe('');
  expect(
    execFileSync(process.execPath, [join(REPO, 'node_modules', 'typescript7', 'bin', 'tsc'), '--version'], {
      encoding: 'utf8',
    }),
  ).toMatch(/^Version 7\./);
});
