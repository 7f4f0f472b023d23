#!/usr/bin/env node
// The nsbox CLI. `nsbox [run] [OPTIONS] ROOTFS CMD [ARG...]`; loads only what the command needs.
import { NsboxError } from './errors.js';
import { reportError, runCommand } from './cli/run.js';

const VERSION = '0.1.0';

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'run') return runCommand(argv.slice(1), VERSION);
  return runCommand(argv, VERSION);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    if (e instanceof NsboxError) process.exitCode = reportError(e);
    else {
      process.stderr.write(`nsbox: internal error: ${e?.stack ?? e}\n`);
      process.exitCode = 125;
    }
  },
);
