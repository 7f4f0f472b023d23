// Terminal escapes (issue 10, class 6): what a container controls — its processes' argv, its
// command, paths and names quoted in errors — reaches the caller's terminal only escaped. A
// process that sets its argv to a window title, an OSC 52 clipboard write and a clear screen
// must not get them run by `nsbox top`. (`logs` prints the container's bytes as they are: asked for.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectNothingLeft, nsbox, ROOTFS, snapshot } from '../helpers.js';

const state = mkdtempSync(join(tmpdir(), 'nsbox-attack-tty-'));
const env = { ...process.env, NSBOX_STATE_DIR: state };
const cli = (args: string[]) => nsbox(args, { env });
afterAll(() => rmSync(state, { recursive: true, force: true }));

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await cli(['rm', '-f', 'esc']);
  await expectNothingLeft(before);
});

/** Raw control characters a terminal acts on: C0 but newline, DEL, C1, bidi overrides. */
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
/** Made inside the container: title, OSC 52 clipboard, clear screen, an 8-bit CSI, a bidi override. */
const PRINTF = String.raw`\033]0;pwned\007\033]52;c;ZXZpbA==\007\033[2J\302\233\342\200\256`;
/** The same, given in the run command (recorded, shown by ps and inspect). */
const GIVEN = '\x1b]0;given\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\u009b\u202e';
/** How nsbox shows it. */
const SHOWN = String.raw`\x1b]0;given\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b\u{202e}`;

describe('what a container controls is printed escaped', () => {
  it('top, ps and inspect show control characters as \\xNN', async () => {
    const script = `printf '\\033[31mred\\n'; exec sh -c 'while :; do sleep 1; done' "$(printf '${PRINTF}')"`;
    const d = await cli(['run', '-d', '--name', 'esc', ROOTFS, 'sh', '-c', script, GIVEN]);
    expect(d.stderr).toBe('');
    let top = '';
    for (let i = 0; i < 100 && !top.includes('pwned'); i++) top = (await cli(['top', 'esc'])).stdout;
    expect(top).toContain(String.raw`\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b\u{202e}`);
    expect(top).not.toMatch(RAW);
    const ps = await cli(['ps']);
    expect(ps.stdout).toContain(String.raw`\x1b]0;given\x07`);
    expect(ps.stdout).not.toMatch(RAW);
    // logs is the container's own output, asked for: its bytes as they are, as docker prints them.
    expect((await cli(['logs', 'esc'])).stdout).toBe('\x1b[31mred\n');
    for (const args of [
      ['inspect', 'esc'],
      ['ps', '--format', 'json'],
    ]) {
      const r = await cli(args);
      expect(r.stdout).not.toMatch(RAW);
      expect(JSON.parse(r.stdout)[0].command).toContain(GIVEN); // the value is kept, only written escaped
    }
  });

  it('errors quoting a container command or path escape it (run, exec)', async () => {
    const run = await cli([ROOTFS, GIVEN]);
    expect(run.code).toBe(127);
    expect(run.stderr).toBe(`nsbox: executable file not found in rootfs: ${SHOWN}\n`);
    expect((await cli(['run', '-d', '--name', 'esc', ROOTFS, 'sleep', '60'])).code).toBe(0);
    const ex = await cli(['exec', 'esc', GIVEN]);
    expect(ex.code).toBe(127);
    expect(ex.stderr).not.toMatch(RAW);
    const w = await cli(['exec', '-w', `/nonexistent${GIVEN}`, 'esc', 'true']);
    expect(w.code).not.toBe(0);
    expect(w.stderr).not.toMatch(RAW);
    const k = await cli(['kill', GIVEN]);
    expect(k.stderr).toBe(`nsbox: no such container: ${SHOWN}\n`);
  });
});
