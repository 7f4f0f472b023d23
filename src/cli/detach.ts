// `run -d`: start a monitor process for the container, detached from this terminal, wait until
// the container runs (or failed to start), and print its id.
import { spawn } from 'node:child_process';
import { closeSync, constants as C, fstatSync, readSync, rmSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NsboxError, type ErrorOptions } from '../errors.js';
import type { Parsed } from './args.js';
import { openRoot } from '../state/dir.js';
import { parseLogSize } from '../state/log.js';

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
  if (size !== undefined && parseLogSize(size as string) === null) {
    throw new NsboxError(`invalid --log-size: ${size} (a size like 512k or 1m, at least 1k)`);
  }
  // The monitor is this same CLI file (the bundle when there is one) with an internal command.
  const cli = process.argv[1] ?? fileURLToPath(new URL('../main.js', import.meta.url));
  // The monitor's stderr goes to a file that is unlinked at once: read only if it fails to report.
  const root = openRoot(true)!;
  const errName = `.monitor.${process.pid}.err`;
  rmSync(root.at(errName), { force: true }); // left by a killed run with our pid
  const errFd = root.open(errName, C.O_RDWR | C.O_CREAT | C.O_EXCL);
  unlinkSync(root.at(errName));
  // '--': Node 20 would read a --env-file of ours itself (it scans all of argv for it before the script).
  const child = spawn(process.execPath, ['--', cli, 'nsbox-monitor', ...argv], {
    detached: true,
    stdio: ['ignore', 'ignore', errFd, 'pipe'],
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
