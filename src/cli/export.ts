// `nsbox export [-o FILE] CONTAINER`: a running container's root filesystem as a tar.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { exportRoot } from '../images/export.js';
import { containerAlive, find } from '../state/store.js';

const EXPORT_HELP = `Usage: nsbox export [-o FILE] CONTAINER

Write a running container's root filesystem (without /proc, /sys, /dev and volumes) as a tar
to standard output, or to FILE.`;

export async function command(_name: string, argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'output', short: 'o', value: 'single' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) {
    process.stdout.write(`${EXPORT_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new NsboxError('export needs one container name or id');
  const st = find(positionals[0]);
  if (st.status !== 'running' || !containerAlive(st))
    throw new NsboxError(`container ${st.name} is not running (nsbox exports a running container's root)`);
  if (!o.output && process.stdout.isTTY)
    throw new NsboxError('refusing to write a tar to a terminal: redirect it, or use -o FILE');
  const out = o.output ? createWriteStream(o.output as string, { mode: 0o600 }) : process.stdout;
  await pipeline(exportRoot(st.pid), out);
  return 0;
}
