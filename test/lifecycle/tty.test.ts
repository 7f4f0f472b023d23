// -t / -it through a real terminal: tmux gives the CLI a pty of its own, keys are typed into
// it and the screen is read back.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI } from '../helpers.js';
import { env, lifecycleHooks, ok, ROOTFS, until } from './util.js';

lifecycleHooks();

const SOCKET = `nsbox-test-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', env });
const screen = () => tmux('capture-pane', '-p', '-t', 't');
const dir = mkdtempSync(join(tmpdir(), 'nsbox-tty-'));

afterEach(() => {
  spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs `nsbox ARGS` in a 100x30 tmux window; afterwards the shell records the status and the terminal's
 * mode. As a user's shell does, bash with job control (set -m) runs it as the terminal's foreground process
 * group of its own, so Ctrl-C and Ctrl-Z reach it alone.
 */
function start(args: string[]): void {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = join(dir, 'session.sh');
  writeFileSync(
    script,
    `set -m\n${process.execPath} ${CLI} ${args.map(q).join(' ')}\necho "status=$?" > ${dir}/status\nstty -a > ${dir}/stty\nsleep 600\n`,
  );
  rmSync(`${dir}/status`, { force: true });
  tmux('new-session', '-d', '-s', 't', '-x', '100', '-y', '30', `bash ${script}`);
}

const type = (keys: string) => tmux('send-keys', '-t', 't', '-l', keys);
const key = (...keys: string[]) => tmux('send-keys', '-t', 't', ...keys);
const shown = (text: string) => until(() => screen().includes(text), `"${text}" on the screen`);
const ended = () =>
  until(() => {
    try {
      return readFileSync(`${dir}/status`, 'utf8');
    } catch {
      return '';
    }
  }, 'the CLI to end');

describe('run -it', () => {
  it('gives an interactive shell a terminal: commands, size, resize, Ctrl-C, exit status, terminal restored', async () => {
    start(['run', '-it', '--name', 'tty', ROOTFS, 'sh']);
    await shown('/ #');
    type('echo $((6*7)); tty; stty size\n');
    await shown('42\n/dev/console\n30 100');
    tmux('resize-window', '-t', 't', '-x', '120', '-y', '40');
    type('stty size\n');
    await shown('40 120');
    type('sleep 1000\n');
    await until(async () => (await ok(['exec', 'tty', 'ps'])).includes('sleep 1000'), 'sleep to run');
    key('C-c');
    type('echo "after $?"\n');
    await shown('after 130');
    // The command's controlling terminal is the console; it is in a session of its own.
    type('[ "$(cut -d" " -f7 /proc/$$/stat)" != 0 ] && echo has-ctty; ls -l /dev/console | cut -c1\n');
    await shown('has-ctty\nc\n');
    type('exit 5\n');
    expect(await ended()).toBe('status=5\n');
    const stty = readFileSync(`${dir}/stty`, 'utf8');
    expect(stty).toMatch(/(^|\s)icanon(\s|$)/);
    expect(stty).toMatch(/(^|\s)echo(\s|$)/);
    expect(stty).toMatch(/(^|\s)isig(\s|$)/);
  });

  it('-t without -i: output on a terminal, no input', async () => {
    start([
      'run',
      '-t',
      ROOTFS,
      'sh',
      '-c',
      'test -t 0 && test -t 1 && echo both-tty; stty size; read -t 2 x; echo "read=$?"',
    ]);
    await shown('both-tty\n30 100');
    type('typed\n');
    expect(await ended()).toBe('status=0\n');
    expect(screen()).not.toMatch(/read=0/);
  });
});

describe('exec -it', () => {
  it('gives an exec a terminal with the window size, and Ctrl-C reaches it', async () => {
    await ok(['run', '-d', '--name', 'box', ROOTFS, 'sh', '-c', 'while true; do sleep 1; done']);
    start(['exec', '-it', 'box', 'sh']);
    await shown('/ #');
    type('stty size; echo $((2+3))\n');
    await shown('30 100\n5');
    type('sleep 1000\n');
    await until(async () => (await ok(['exec', 'box', 'ps'])).includes('sleep 1000'), 'sleep to run');
    key('C-c');
    type('echo "after $?"; exit 4\n');
    expect(await ended()).toBe('status=4\n');
    expect(screen()).toMatch(/after 130/);
  });
});

describe('a terminal through script(1)', () => {
  it('run -t reads the window size of the calling terminal', () => {
    const r = spawnSync(
      'script',
      ['-qec', `stty cols 77 rows 11; ${process.execPath} ${CLI} run -t ${ROOTFS} stty size`, '/dev/null'],
      { encoding: 'utf8', env },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^11 77\r?\r\n$/m);
  });
});

describe('signals from the terminal, as for a plain process', () => {
  it('Ctrl-C ends a foreground container whose PID 1 has no handler (exit 130)', async () => {
    start(['run', '--name', 'ctrlc', ROOTFS, 'sh', '-c', 'echo started; exec sleep 1000']);
    await shown('started');
    await until(
      async () => /running/.test((await ok(['ps'])).split('\n').find((l) => l.includes('ctrlc')) ?? ''),
      'it to run',
    );
    key('C-c');
    expect(await ended()).toBe('status=130\n');
  });

  it('Ctrl-Z does not leave the container running unattended: the CLI refuses to be suspended', async () => {
    start(['run', ROOTFS, 'sh', '-c', 'echo started; sleep 2; echo done']);
    await shown('started');
    key('C-z');
    await shown('cannot be suspended');
    // The CLI was not stopped: it still waits on the container, which finishes by itself.
    await shown('done');
    expect(await ended()).toBe('status=0\n');
  });
});
