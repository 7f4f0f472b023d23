// `nsbox kill [-s SIG] NAME...` and `nsbox stop [-t SECONDS] NAME...`.
import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { NsboxError } from '../errors.js';
import { stopSignalOf } from '../images/rwlayer.js';
import * as native from '../native.js';
import { parseArgs } from './args.js';
import { escapeText } from './escape.js';
import { find, locked, pidfdOf, writeState } from '../state/store.js';
import { deliver } from '../signals.js';
import { waitFd, waitMonitor } from '../state/wait.js';

const KILL_HELP = `Usage: nsbox kill [-s SIGNAL] NAME|ID...

Send a signal (default SIGKILL) to the PID 1 of running containers. A signal PID 1 has no handler for
ends the container, as it would end the process outside one (unless it runs with --signals docker,
where PID 1 ignores it, as in Docker).`;

const STOP_HELP = `Usage: nsbox stop [-t SECONDS] NAME|ID...

Stop containers: SIGTERM to PID 1 (which ends it at once when it has no handler for it), then
SIGKILL after SECONDS (default 10), saying so. Returns once each container has ended and its monitor
has recorded it.`;

/** "KILL", "SIGKILL", "sigkill" or "9". */
export function parseSignal(v: string): number {
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = v.toUpperCase().startsWith('SIG') ? v.toUpperCase() : `SIG${v.toUpperCase()}`;
    const n = (constants.signals as Record<string, number>)[name];
    if (n !== undefined) return n;
  }
  throw new NsboxError(`invalid signal: ${v}`);
}

/**
 * Signal PID 1 under the container's lock, as a process is signalled (src/signals.ts): one it has
 * no handler for ends it, and the state says which. Returns its pidfd (caller closes), or null when
 * it is not running.
 */
export function signalContainer(ref: string, sig: number): { pidfd: number | null; name: string } {
  const st = find(ref);
  return locked(st.id, (now) => {
    const pidfd = now ? pidfdOf(now) : null;
    if (pidfd !== null && now && deliver(pidfd, now.pid, sig, now.signals ?? 'process', true) && !now.killedBy) {
      writeState({ ...now, killedBy: sig }); // we hold the lock: the monitor records the end under it
    }
    return { pidfd, name: st.name };
  });
}

async function kill(argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'signal', short: 's', value: 'single' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) return help(KILL_HELP);
  if (!positionals.length) throw new NsboxError('kill needs a container name or id');
  const sig = parseSignal((o.signal as string | undefined) ?? 'KILL');
  let code = 0;
  for (const ref of positionals) {
    try {
      const { pidfd, name } = signalContainer(ref, sig);
      if (pidfd === null) throw new NsboxError(`container ${name} is not running`);
      closeSync(pidfd);
      process.stdout.write(`${escapeText(ref)}\n`);
    } catch (e) {
      if (!(e instanceof NsboxError)) throw e;
      process.stderr.write(`nsbox: ${escapeText(e.message)}\n`);
      code = 125;
    }
  }
  return code;
}

async function stopOne(ref: string, seconds: number): Promise<void> {
  const st = find(ref);
  const { pidfd } = signalContainer(ref, parseSignal(stopSignalOf(st.id) ?? 'TERM')); // an image's StopSignal
  if (pidfd !== null) {
    const timer = setTimeout(() => {
      try {
        native.pidfdSendSignal(pidfd, constants.signals.SIGKILL);
        process.stderr.write(`nsbox: container ${st.name} did not stop within ${seconds} s of SIGTERM: sent SIGKILL\n`);
      } catch {
        /* ended meanwhile */
      }
    }, seconds * 1000);
    await waitFd(pidfd);
    clearTimeout(timer);
    // Its monitor records the end and cleans up.
    await waitMonitor(st);
  }
}

async function stop(argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'time', short: 't', value: 'single' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) return help(STOP_HELP);
  if (!positionals.length) throw new NsboxError('stop needs a container name or id');
  const t = (o.time as string | undefined) ?? '10';
  // setTimeout takes at most 2^31-1 ms: a longer wait would fire at once.
  if (!/^\d{1,7}$/.test(t) || Number(t) > 2147483) {
    throw new NsboxError(`invalid --time: ${t} (whole seconds, at most 2147483)`);
  }
  return forEachContainer(positionals, (ref) => stopOne(ref, Number(t)));
}

/**
 * Runs `fn` on every container named, at once; prints each name done and a one-line error for each
 * that failed. Exit status 125 when any failed, as every command's for an error of nsbox's (a container
 * that does not exist too, as podman's stop and kill).
 */
export async function forEachContainer(refs: string[], fn: (ref: string) => Promise<unknown>): Promise<number> {
  const results = await Promise.allSettled(refs.map(fn));
  let code = 0;
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') process.stdout.write(`${escapeText(refs[i])}\n`);
    else if (r.reason instanceof NsboxError) {
      process.stderr.write(`nsbox: ${escapeText(r.reason.message)}\n`);
      code = 125;
    } else throw r.reason;
  });
  return code;
}

function help(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

export async function command(name: string, argv: string[]): Promise<number> {
  return name === 'kill' ? kill(argv) : stop(argv);
}
