// `nsbox rm [-f] NAME...`: remove stopped containers; with -f, kill running ones first.
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import { parseArgs } from './args.js';
import { forEachContainer } from './signal.js';
import { find, isActive, list, locked, pidfdOf, removeEntry } from '../state/store.js';
import { waitFd, waitMonitor } from '../state/wait.js';

const RM_HELP = `Usage: nsbox rm [-f] NAME|ID...

Remove stopped containers: their state, name and log.
  -f, --force   kill running containers first (SIGKILL), then remove them`;

async function rmOne(ref: string, force: boolean): Promise<void> {
  const st = find(ref);
  const active = locked(st.id, (now) => {
    if (!now || !isActive(now)) return null;
    if (!force) throw new NsboxError(`container ${st.name} is ${now.status}: stop it first, or use rm -f`);
    const fd = pidfdOf(now);
    if (fd !== null) native.pidfdSendSignal(fd, 9);
    return { fd, now };
  });
  if (active) {
    if (active.fd !== null) await waitFd(active.fd);
    // Its monitor records the end and cleans up (and removes a --rm container itself).
    await waitMonitor(active.now);
  }
  locked(st.id, (now) => {
    if (now) removeEntry(now);
  });
}

const PRUNE_HELP = `Usage: nsbox prune            (also: nsbox container prune)

Remove every stopped container (its state, name and log), printing each id removed.`;

// -f for prune too: docker's `container prune -f` skips a prompt nsbox never shows.
const OPTIONS = [
  { long: 'force', short: 'f' },
  { long: 'help', short: 'h' },
];

/** Every stopped container, removed; running ones are left alone. */
async function prune(argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(argv, OPTIONS, Infinity);
  if (o.help) {
    process.stdout.write(`${PRUNE_HELP}\n`);
    return 0;
  }
  if (positionals.length) throw new NsboxError(`prune takes no arguments: ${positionals[0]}`);
  const stopped = list()
    .filter((st) => !isActive(st))
    .map((st) => st.id);
  return stopped.length ? forEachContainer(stopped, (id) => rmOne(id, false)) : 0;
}

export async function command(name: string, argv: string[]): Promise<number> {
  if (name === 'prune') return prune(argv);
  if (name === 'container') {
    if (argv[0] === 'prune') return prune(argv.slice(1));
    throw new NsboxError(`unknown container command: ${argv[0] ?? '(none)'} (container prune)`);
  }
  const { options: o, positionals } = parseArgs(argv, OPTIONS, Infinity);
  if (o.help) {
    process.stdout.write(`${RM_HELP}\n`);
    return 0;
  }
  if (!positionals.length) throw new NsboxError('rm needs a container name or id');
  return forEachContainer(positionals, (ref) => rmOne(ref, !!o.force));
}
