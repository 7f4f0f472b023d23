// The monitor of a detached container (`nsbox nsbox-monitor ARGS`, started by `run -d` with the
// run's own arguments, from the same CLI file). The only nsbox process outside the container: it creates the container,
// holds its pidfd, keeps its output in a size-capped log, records how it ended, and cleans up.
// It reports once on fd 3: the id when the command runs, or the error.
import { closeSync, openSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import * as tty from 'node:tty';
import type { Container } from '../container.js';
import { cliMessage, NsboxError } from '../errors.js';
import type { SignalMode } from '../signals.js';
import { configOf } from './run.js';
import * as native from '../native.js';
import type { MonitorReport } from './detach.js';
import { containerFromArgs, parseRunArgs } from './run.js';
import { consolePart } from '../tty/console.js';
import { openTerminal } from '../tty/relay.js';
import { DEFAULT_LOG_LIMIT, LogWriter, parseLogSize } from '../state/log.js';
import { Tracker } from '../state/track.js';

const REPORT_FD = 3;

function report(r: MonitorReport): void {
  try {
    writeSync(REPORT_FD, JSON.stringify(r));
    closeSync(REPORT_FD);
  } catch {
    /* the CLI is gone: the container runs on */
  }
}

function reportError(e: unknown): void {
  if (e instanceof NsboxError)
    report({ error: { message: cliMessage(e), kind: e.kind, code: e.code, step: e.step, exec: e.exec } });
  else report({ error: { message: `internal error in the monitor: ${(e as Error)?.stack ?? e}`, internal: true } });
}

/** Copy the container's output into the log until every writer has closed it. */
function collect(fd: number, terminal: boolean, log: LogWriter): Promise<void> {
  const s = terminal ? new tty.ReadStream(fd) : new Socket({ fd, readable: true, writable: false });
  s.on('data', (d: Buffer) => log.write(d));
  return new Promise((resolve) => {
    s.on('close', () => resolve());
    s.on('error', () => s.destroy()); // EIO once the terminal's last holder is gone
  });
}

async function main(argv: string[]): Promise<void> {
  const { o, rootfs, command } = parseRunArgs(argv);
  const limit =
    o['log-size'] === undefined ? DEFAULT_LOG_LIMIT : (parseLogSize(o['log-size'] as string) ?? DEFAULT_LOG_LIMIT);
  const tracker = new Tracker({
    name: o.name as string | undefined,
    hostname: o.hostname as string | undefined,
    rootfs,
    command,
    detached: true,
    autoRemove: !!o.rm,
    init: !!o.init,
    tty: !!o.tty,
    logLimit: limit,
    signals: o.signals as SignalMode | undefined,
    config: configOf(o),
  });
  process.title = `nsbox-monitor ${tracker.id}`;
  let c: Container;
  let out: number,
    held: number[],
    console = '';
  try {
    if (o.tty) {
      const t = openTerminal();
      out = t.master;
      held = [t.slave];
      console = t.path;
    } else {
      const [r, w] = native.pipe();
      out = r;
      held = [w, openSync('/dev/null', 'r')];
    }
    const [a, b = a] = held;
    const parts = [tracker.part()];
    if (o.tty) parts.push(consolePart(console));
    c = containerFromArgs(o, rootfs, command, { id: tracker.id, parts, stdio: [b, a, a] });
  } catch (e) {
    tracker.failed();
    throw e;
  }
  for (const fd of held) closeSync(fd);
  const log = new LogWriter(tracker.openDir(), limit);
  const output = collect(out, !!o.tty, log);
  try {
    await c.ready;
  } catch (e) {
    tracker.failed();
    reportError(e);
    await c.exited.catch(() => {});
    return;
  }
  tracker.running();
  report({ id: tracker.id });
  const st = await c.exited;
  await output;
  log.close();
  tracker.stopped(st);
}

/** `nsbox nsbox-monitor RUN-ARGS...`: resolves when the container has ended and been recorded. */
export async function command(_name: string, argv: string[]): Promise<number> {
  try {
    await main(argv);
    return 0;
  } catch (e) {
    reportError(e);
    return 1;
  }
}
