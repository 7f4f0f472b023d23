// state.json's layout (src/state/store.ts): one JSON object on two lines, `exec` (what exec starts
// from, most of the bytes) last and alone on the second, so that a list (ps) parses only the first.
// Any reader can parse the whole file (an earlier nsbox too), and an earlier nsbox's indented file is
// still read by every command.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectNothingLeft, nsbox, ROOTFS, snapshot } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nsbox-state-format-'));
chmodSync(dir, 0o700);
const env = { ...process.env, NSBOX_STATE_DIR: dir };
let before: ReturnType<typeof snapshot>;

async function ok(args: string[]): Promise<string> {
  const r = await nsbox(args, { env });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return r.stdout;
}

const stateFile = async (name: string) => {
  const [st] = JSON.parse(await ok(['inspect', name])) as { id: string }[];
  return join(dir, st.id, 'state.json');
};

beforeAll(() => {
  before = snapshot();
});

afterAll(async () => {
  await nsbox(['rm', '-f', 'fmt-new', 'fmt-old'], { env });
  rmSync(dir, { recursive: true, force: true });
  await expectNothingLeft(before);
});

describe('state.json', () => {
  it('is one object on two lines: the state, then exec, which a list need not parse', async () => {
    await ok(['run', '-d', '--name', 'fmt-new', '-e', 'MARK=1', ROOTFS, 'sleep', '1000']);
    const text = readFileSync(await stateFile('fmt-new'), 'utf8');
    const lines = text.split('\n');
    expect(lines).toHaveLength(3); // the state, exec, and the final newline
    expect(lines[2]).toBe('');
    const whole = JSON.parse(text);
    expect(Object.keys(whole).at(-1)).toBe('exec');
    expect(whole.exec.env).toContain('MARK=1');
    expect(lines[0].endsWith(',')).toBe(true);
    const head = JSON.parse(`${lines[0].slice(0, -1)}}`);
    expect(head.exec).toBeUndefined();
    expect({ ...head, exec: whole.exec }).toEqual(whole);
    const [listed] = JSON.parse(await ok(['ps', '--format', 'json', '--filter', 'name=fmt-new']));
    expect(listed).toMatchObject({ name: 'fmt-new', status: 'running' });
    expect(await ok(['exec', 'fmt-new', 'sh', '-c', 'echo $MARK'])).toBe('1\n');
  });

  it("an earlier nsbox's indented file is read by ps, exec, inspect, stop and rm", async () => {
    await ok(['run', '-d', '--name', 'fmt-old', '-e', 'MARK=2', ROOTFS, 'sleep', '1000']);
    const file = await stateFile('fmt-old');
    writeFileSync(file, `${JSON.stringify(JSON.parse(readFileSync(file, 'utf8')), null, 1)}\n`, { mode: 0o600 });
    expect(readFileSync(file, 'utf8').startsWith('{\n')).toBe(true);
    const [listed] = JSON.parse(await ok(['ps', '--format', 'json', '--filter', 'name=fmt-old']));
    expect(listed).toMatchObject({ name: 'fmt-old', status: 'running' });
    expect(await ok(['exec', 'fmt-old', 'sh', '-c', 'echo $MARK'])).toBe('2\n');
    const [st] = JSON.parse(await ok(['inspect', 'fmt-old']));
    expect(st.env).toContain('MARK=2');
    await ok(['stop', '-t', '0', 'fmt-old']);
    expect(JSON.parse(await ok(['ps', '-a', '--format', 'json', '--filter', 'name=fmt-old']))[0].status).toBe(
      'stopped',
    );
    await ok(['rm', 'fmt-old']);
  });

  it('a state read without exec (a list) is never written back', async () => {
    const { list, writeState } = await import('../dist/state/store.js');
    const saved = process.env.NSBOX_STATE_DIR;
    process.env.NSBOX_STATE_DIR = dir;
    try {
      const st = list().find((s) => s.name === 'fmt-new');
      expect(st?.exec.creds).toEqual([]);
      expect(() => writeState(st!)).toThrow(/without exec/);
      expect(JSON.parse(readFileSync(await stateFile('fmt-new'), 'utf8')).exec.env).toContain('MARK=1');
    } finally {
      process.env.NSBOX_STATE_DIR = saved;
    }
  });
});
