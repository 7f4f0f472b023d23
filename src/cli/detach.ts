// `run -d`: start the container's monitor (native/monitor.c, a small process that stays while the
// container runs), detached from this terminal; it runs the set-up step (src/cli/setup.ts), which
// reports here once the container runs (or failed to start). Prints the id.
import { spawn } from 'node:child_process';
import { closeSync, constants as C, fstatSync, readSync, rmSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NsboxError, type ErrorOptions } from '../errors.js';
import type { Parsed } from './args.js';
import { openRoot } from '../state/dir.js';
import { DEFAULT_LOG_LIMIT, parseLogSize } from '../state/log.js';
import { monitorPath } from '../native.js';

/** What the monitor writes on its fd 3, once: the id, or why the container did not start. */
export interface MonitorReport {
  id?: string;
  error?: ErrorOptions & { message: string; internal?: boolean };
}

export async function runDetached(
  argv: string[],
  o: Parsed['options'],
  _rootfs: string,
  _command: string[],
): Promise<number> {
  if (o.interactive) throw new NsboxError('-i needs an attached terminal: it cannot be combined with -d');
  const size = o['log-size'];
  const limit = size === undefined ? DEFAULT_LOG_LIMIT : parseLogSize(size as string);
  if (limit === null) throw new NsboxError(`invalid --log-size: ${size} (a size like 512k or 1m, at least 1k)`);
  // The steps the monitor runs are this same CLI file (the bundle when there is one) with internal commands.
  const cli = process.argv[1] ?? fileURLToPath(new URL('../main.js', import.meta.url));
  // The monitor's stderr goes to a file that is unlinked at once: read only if it fails to report.
  const root = openRoot(true)!;
  const errName = `.monitor.${process.pid}.err`;
  rmSync(root.at(errName), { force: true }); // left by a killed run with our pid
  const errFd = root.open(errName, C.O_RDWR | C.O_CREAT | C.O_EXCL);
  unlinkSync(root.at(errName));
  // It is given the state root open (fd 4): the container's directory is opened from it, never by path.
  const args = ['-n', process.execPath, '-c', cli, '-s', String(limit), ...(o.tty ? ['-t'] : []), '--', ...argv];
  const child = spawn(monitorPath(), args, {
    argv0: 'nsbox-monitor',
    detached: true,
    stdio: ['ignore', 'ignore', errFd, 'pipe', root.fd],
  });
  const pipe = child.stdio[3] as import('node:stream').Readable;
  let text = '';
  pipe.setEncoding('utf8');
  pipe.on('data', (d: string) => (text += d));
  let status = '';
  await new Promise<void>((resolve) => {
    pipe.on('close', resolve);
    child.on('error', (e) => {
      status = e.message;
      resolve();
    });
  });
  child.unref();
  let r: MonitorReport = {};
  try {
    r = JSON.parse(text) as MonitorReport;
  } catch {
    const buf = Buffer.alloc(Math.min(fstatSync(errFd).size, 1 << 16));
    const err = buf
      .subarray(0, readSync(errFd, buf, 0, buf.length, 0))
      .toString()
      .trim()
      .split('\n')
      .slice(-3)
      .join(' / ');
    throw new NsboxError(
      `the container monitor ended before the container started${err || status ? `: ${err || status}` : ''}`,
    );
  } finally {
    closeSync(errFd);
  }
  if (r.error) {
    if (r.error.internal) throw new Error(r.error.message);
    throw new NsboxError(r.error.message, r.error);
  }
  process.stdout.write(`${r.id}\n`);
  return 0;
}
