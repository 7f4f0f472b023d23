// "No such container" is one error in every command that takes a container: exit 125 and
// `nsbox: no such container: NAME`, as podman's (whose rm alone says 1), whether the state
// directory has containers, or is new and empty (no names/ yet).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nsbox } from '../helpers.js';
import { env, lifecycleHooks, ok, ROOTFS } from './util.js';

lifecycleHooks();
const empty = mkdtempSync(join(tmpdir(), 'nsbox-state-empty-'));
chmodSync(empty, 0o755);
afterAll(() => rmSync(empty, { recursive: true, force: true }));

/** Every command that takes a container, in each form that looks one up. */
const FORMS: string[][] = [
  ['stop', 'nope'],
  ['stop', '-t', '1', 'nope'],
  ['kill', 'nope'],
  ['kill', '-s', 'TERM', 'nope'],
  ['rm', 'nope'],
  ['rm', '-f', 'nope'],
  ['exec', 'nope', 'true'],
  ['exec', '-t', 'nope', 'true'],
  ['logs', 'nope'],
  ['logs', '-f', 'nope'],
  ['inspect', 'nope'],
  ['top', 'nope'],
  ['stats', 'nope'],
  ['stats', '--no-stream', 'nope'],
  ['port', 'nope'],
  ['export', 'nope'],
];

/** Each form against the state directory `dir`: exit 125, nothing on stdout, that one line on stderr. */
async function expectMissing(dir: string): Promise<void> {
  const results = await Promise.all(
    FORMS.map(async (argv) => {
      const r = await nsbox(argv, { env: { ...env, NSBOX_STATE_DIR: dir } });
      return { argv: argv.join(' '), code: r.code, stdout: r.stdout, stderr: r.stderr };
    }),
  );
  for (const r of results) {
    expect(r).toEqual({ argv: r.argv, code: 125, stdout: '', stderr: 'nsbox: no such container: nope\n' });
  }
}

describe('no such container', () => {
  it('is exit 125 and one line in every command, beside a running container', async () => {
    await ok(['run', '-d', '--name', 'there', ROOTFS, 'sleep', '1000']);
    await expectMissing(env.NSBOX_STATE_DIR!);
  });

  it('the same in a new, empty state directory (no names/ yet)', async () => {
    await expectMissing(empty);
  });

  it('with several names, each missing one is said and the others are done; exit 125', async () => {
    await ok(['run', '-d', '--name', 'one', ROOTFS, 'sleep', '1000']);
    const r = await nsbox(['rm', '-f', 'nope', 'one', 'nope2'], { env });
    expect(r.code).toBe(125);
    expect(r.stdout).toBe('one\n');
    expect(r.stderr.split('\n').sort()).toEqual([
      '',
      'nsbox: no such container: nope',
      'nsbox: no such container: nope2',
    ]);
  });
});
