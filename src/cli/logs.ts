// `nsbox logs [-f] [--tail N] NAME`: the output a detached container wrote (its log keeps the
// last 1-2 times --log-size of it).
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { followLog, readLog } from '../state/log.js';
import { find, isActive, openEntry, root } from '../state/store.js';
import { waitMonitor } from '../state/wait.js';

const LOGS_HELP = `Usage: nsbox logs [-f] [--tail N] NAME|ID

Print the output (stdout and stderr, interleaved) of a detached container.
  -f, --follow   keep printing new output until the container ends
  -n, --tail N   start with the last N lines`;

function write(b: Buffer): void {
  if (b.length) process.stdout.write(b);
}

export async function command(_name: string, argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'follow', short: 'f' },
      { long: 'tail', short: 'n', value: 'single' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) {
    process.stdout.write(`${LOGS_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new NsboxError('logs needs one container name or id');
  if (o.tail !== undefined && !/^\d{1,9}$/.test(o.tail as string)) {
    throw new NsboxError(`invalid --tail: ${o.tail} (a number of lines)`);
  }
  const tail = o.tail === undefined ? undefined : Number(o.tail);
  const st = find(positionals[0]);
  if (!st.detached)
    throw new NsboxError(`container ${st.name} runs in the foreground: its output goes to its terminal`);
  let dir;
  try {
    dir = openEntry(st.id, root()!);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NsboxError(`no such container: ${positionals[0]}`);
    throw e;
  }
  const { data, at } = readLog(dir, tail);
  write(data);
  if (!o.follow || !isActive(st)) return 0;
  const f = followLog(dir, at, write);
  await waitMonitor(st);
  f.stop();
  return 0;
}
