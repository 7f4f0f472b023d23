// `nsbox logs [-f] [-t] [--tail N] [--since T] [--until T] NAME`: the output a detached container wrote
// (its log keeps the last 1-2 times --log-size of it), stdout to stdout and stderr to stderr.
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { followLog, type LogRecord, parseLogTime, readLog, type Stream, tailRecords } from '../state/log.js';
import { find, isActive, openEntry, root } from '../state/store.js';
import { waitMonitor } from '../state/wait.js';

const LOGS_HELP = `Usage: nsbox logs [OPTIONS] NAME|ID

Print the output of a detached container: its stdout to stdout, its stderr to stderr (a container
with a terminal has one stream).
  -f, --follow      keep printing new output until the container ends
  -n, --tail N      start with the last N lines
  -t, --timestamps  start each line with the time it was written (RFC 3339, UTC, nanoseconds)
      --since T     only output since T: an RFC 3339 time or date, Unix seconds, or a duration before now (10m)
      --until T     only output before T (the same forms)`;

/** Writes records to the two streams; remembers per stream whether the next record starts a line. */
function printer(timestamps: boolean, since: string | null, until: string | null) {
  const atStart: Record<Stream, boolean> = { stdout: true, stderr: true };
  return (records: LogRecord[]) => {
    const out: Record<Stream, Buffer[]> = { stdout: [], stderr: [] };
    for (const r of records) {
      const start = atStart[r.stream];
      atStart[r.stream] = r.full;
      if ((since && r.time < since) || (until && r.time > until)) continue;
      const o = out[r.stream];
      if (timestamps && start) o.push(Buffer.from(`${r.time} `));
      o.push(r.text);
      if (r.full) o.push(Buffer.from('\n'));
    }
    if (out.stdout.length) process.stdout.write(Buffer.concat(out.stdout));
    if (out.stderr.length) process.stderr.write(Buffer.concat(out.stderr));
  };
}

function time(v: unknown, name: string): string | null {
  if (v === undefined) return null;
  const t = parseLogTime(v as string);
  if (t === null)
    throw new NsboxError(`invalid --${name}: ${v} (an RFC 3339 time, Unix seconds or a duration like 10m)`);
  return t;
}

export async function command(_name: string, argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'follow', short: 'f' },
      { long: 'tail', short: 'n', value: 'single' },
      { long: 'timestamps', short: 't' },
      { long: 'since', value: 'single' },
      { long: 'until', value: 'single' },
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
  const since = time(o.since, 'since'),
    until = time(o.until, 'until');
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
  const print = printer(!!o.timestamps, since, until);
  const { records, at } = readLog(dir);
  print(o.tail === undefined ? records : tailRecords(records, Number(o.tail)));
  if (!o.follow || !isActive(st)) return 0;
  const f = followLog(dir, at, print);
  await waitMonitor(st);
  f.stop();
  return 0;
}
