// `run -d`: start a monitor process for the container, detached from this terminal, wait until
// the container runs (or failed to start), and print its id.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NsboxError } from '../errors.js';
import type { Parsed } from './args.js';
import { parseLogSize } from '../state/log.js';

/** What the monitor writes on its fd 3, once: the id, or why the container did not start. */
export interface MonitorReport {
  id?: string;
  error?: { message: string; code?: string; step?: string; internal?: boolean };
}

export async function runDetached(argv: string[], o: Parsed['options'], _rootfs: string, _command: string[]): Promise<number> {
  if (o.interactive) throw new NsboxError('-i needs an attached terminal: it cannot be combined with -d');
  const size = o['log-size'];
  if (size !== undefined && parseLogSize(size as string) === null) {
    throw new NsboxError(`invalid --log-size: ${size} (a size like 512k or 1m, at least 1k)`);
  }
  const monitor = fileURLToPath(new URL('../state/monitor.js', import.meta.url));
  const child = spawn(process.execPath, [monitor, ...argv], { detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const pipe = child.stdio[3] as import('node:stream').Readable;
  let text = '';
  pipe.setEncoding('utf8');
  pipe.on('data', (d: string) => (text += d));
  await new Promise<void>((resolve) => {
    pipe.on('close', resolve);
    child.on('error', resolve);
  });
  child.unref();
  let r: MonitorReport = {};
  try {
    r = JSON.parse(text) as MonitorReport;
  } catch {
    throw new NsboxError('the container monitor ended before the container started');
  }
  if (r.error) {
    if (r.error.internal) throw new Error(r.error.message);
    throw new NsboxError(r.error.message, { code: r.error.code, step: r.error.step });
  }
  process.stdout.write(`${r.id}\n`);
  return 0;
}
