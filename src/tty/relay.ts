// Connect a pty master to the user's terminal while a command runs: raw mode on the user's side
// (so Ctrl-C reaches the command's terminal as a byte), the window size at start and on every
// resize, and the user's terminal restored when the command's side closes.
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as tty from 'node:tty';
import * as native from '../native.js';

// node:tty pulls in node:net and the streams (~3 ms to load): only when a terminal is relayed.
const require = createRequire(import.meta.url);

export interface Terminal {
  master: number;
  slave: number;
  /** The slave's host path, e.g. /dev/pts/3. */
  path: string;
}

/** The user's terminal to take the size from: stdout, else stderr, else stdin. */
function userTerminal(): tty.WriteStream | null {
  if (process.stdout.isTTY) return process.stdout;
  if (process.stderr.isTTY) return process.stderr;
  return null;
}

function copySize(master: number): void {
  const t = userTerminal();
  if (!t) return;
  const [cols, rows] = t.getWindowSize();
  if (cols > 0 && rows > 0) native.setWinsize(master, rows, cols);
}

/** A new pty with the user's window size (80x24 when there is no terminal to copy). */
/** A new terminal: from the host's devpts, or from a container's own (the root at `root`, e.g. /proc/PID/root). */
export function openTerminal(root?: string): Terminal {
  const t = root === undefined ? native.openpty() : native.openptyIn(root);
  try {
    if (userTerminal()) copySize(t.master);
    else native.setWinsize(t.master, 24, 80);
  } catch (e) {
    closeSync(t.master);
    closeSync(t.slave);
    throw e;
  }
  return t;
}

/**
 * Relay between the master and this process's stdio until the last holder of the slave is gone.
 * Call once the child has its copy of the slave: ours is closed here.
 */
export function relay(t: Terminal, input: boolean): Promise<void> {
  closeSync(t.slave);
  const { ReadStream } = require('node:tty') as typeof tty;
  const m = new ReadStream(t.master);
  const stdin = process.stdin;
  const raw = input && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const onInput = (d: Buffer) => m.write(d);
  const onEnd = () => m.write('\x04'); // input from a pipe ended: the terminal's end-of-file
  if (input) {
    stdin.on('data', onInput);
    if (!raw) stdin.once('end', onEnd);
    stdin.resume();
  }
  const resize = () => {
    try {
      copySize(t.master);
    } catch {
      /* closed */
    }
  };
  const user = userTerminal();
  user?.on('resize', resize);
  m.on('data', (d: Buffer) => process.stdout.write(d));
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      user?.off('resize', resize);
      if (input) {
        stdin.off('data', onInput);
        stdin.off('end', onEnd);
        stdin.pause();
      }
      if (raw) stdin.setRawMode(false);
      m.destroy();
      resolve();
    };
    m.on('end', finish);
    m.on('close', finish);
    m.on('error', finish); // EIO: every slave is closed
  });
}

/** -t with a stdin that is not a terminal: say so once, as podman does (the command still gets one). */
export function warnIfNotTerminal(): void {
  if (!process.stdin.isTTY) {
    process.stderr.write('nsbox: warning: the input device is not a terminal; -t and -i may not work as expected\n');
  }
}
