// A foreground `run`: the CLI is the container's monitor. While it runs the container is
// listed by `ps` and reachable by `exec`; it is removed when it ends.
import { NsboxError } from '../errors.js';
import type { SignalMode } from '../signals.js';
import { configOf } from './run.js';
import type { Container } from '../container.js';
import type { Parsed } from './args.js';
import type { Launch } from './run.js';
import { Tracker } from '../state/track.js';
import { consolePart } from '../tty/console.js';
import { openTerminal, relay, warnIfNotTerminal, type Terminal } from '../tty/relay.js';

export interface Foreground {
  /** Create the container through `make`; the state entry and terminal follow its life. */
  start(make: (launch: Launch) => Container): Container;
}

/** Registration is best-effort (a rootless user may have no runtime directory), except a taken name
 *  or a state directory refused as unsafe. */
function register(o: Parsed['options'], rootfs: string, command: string[]): Tracker | null {
  try {
    return new Tracker({
      name: o.name as string | undefined,
      hostname: o.hostname as string | undefined,
      rootfs,
      command,
      detached: false,
      autoRemove: true,
      init: !!o.init,
      tty: !!o.tty,
      logLimit: 0,
      signals: o.signals as SignalMode | undefined,
      config: configOf(o),
    });
  } catch (e) {
    if (e instanceof NsboxError && (e.step === 'name' || e.step === 'state')) throw e;
    return null;
  }
}

export async function foreground(o: Parsed['options'], rootfs: string, command: string[]): Promise<Foreground> {
  if (o['log-size'] !== undefined) throw new NsboxError('--log-size applies to detached containers (-d)');
  const tracker = register(o, rootfs, command);
  let term: Terminal | null = null;
  try {
    if (o.tty) {
      warnIfNotTerminal();
      term = openTerminal();
    }
  } catch (e) {
    tracker?.failed();
    throw e;
  }
  return {
    start(make) {
      const parts = [];
      if (tracker) parts.push(tracker.part());
      if (term) parts.push(consolePart(term.path));
      let c: Container;
      try {
        c = make({ id: tracker?.id, parts, stdio: term ? [term.slave, term.slave, term.slave] : undefined });
      } catch (e) {
        tracker?.failed();
        if (term) relay(term, false);
        throw e;
      }
      const attached = term ? relay(term, !!o.interactive) : Promise.resolve();
      c.ready.then(
        () => tracker?.running(),
        () => tracker?.failed(),
      );
      // The exit is recorded once the terminal has passed on the last output.
      c.exited.then(
        async (st) => {
          await attached;
          tracker?.stopped(st);
        },
        () => {},
      );
      return c;
    },
  };
}
