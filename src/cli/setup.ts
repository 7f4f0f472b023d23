// The set-up step of a detached container (`nsbox nsbox-setup RUN-ARGS`), run by its nsbox-monitor
// (native/monitor.c) with the run's own arguments. It registers the container, creates it as the
// monitor's child (CLONE_PARENT: the container dies with the monitor, and only the monitor can reap it)
// with the output ends the monitor made, tells the monitor "PID ID" on fd 4, reports to `run -d` on fd 3
// (the id, or the error) and exits: the monitor alone stays while the container runs.
import { closeSync, openSync, readlinkSync, writeSync } from 'node:fs';
import type { Container } from '../container.js';
import { cliMessage, NsboxError } from '../errors.js';
import type { SignalMode } from '../signals.js';
import { configOf } from './run.js';
import type { MonitorReport } from './detach.js';
import { containerFromArgs, loadImageRun, parseRunArgs } from './run.js';
import { isImageArg } from '../images/rwlayer.js';
import { consolePart } from '../tty/console.js';
import { DEFAULT_LOG_LIMIT, parseLogSize } from '../state/log.js';
import { Tracker } from '../state/track.js';
import { procStat, setOwnerProcess } from '../proc.js';

const REPORT_FD = 3;
const MONITOR_FD = 4;
/** The container's stdout and stderr (a pipe each), or with -t its terminal (stdout only). */
const OUT_FD = 5;
const ERR_FD = 6;

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
  else report({ error: { message: `internal error in the set-up step: ${(e as Error)?.stack ?? e}`, internal: true } });
}

/** Our parent, checked to be the monitor that started us (it says its pid in the environment). */
function monitorProcess(): { pid: number; start: number } {
  const pid = Number(process.env.NSBOX_MONITOR_PID);
  delete process.env.NSBOX_MONITOR_PID;
  const start = procStat(pid)?.start;
  if (!pid || process.ppid !== pid || start === undefined) throw new NsboxError('the container monitor is gone');
  return { pid, start };
}

async function main(argv: string[]): Promise<number> {
  const { o, rootfs, command } = parseRunArgs(argv);
  if (isImageArg(rootfs)) await loadImageRun();
  const monitor = monitorProcess();
  // Cgroups and network records name their owner: the monitor, which outlives this step.
  setOwnerProcess(monitor);
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
    monitor,
  });
  let c: Container;
  const nul = openSync('/dev/null', 'r');
  try {
    const parts = [tracker.part(), { adopted: true }];
    if (o.tty) parts.push(consolePart(readlinkSync(`/proc/self/fd/${OUT_FD}`)));
    const stdio: [number, number, number] = o.tty ? [OUT_FD, OUT_FD, OUT_FD] : [nul, OUT_FD, ERR_FD];
    c = containerFromArgs(o, rootfs, command, { id: tracker.id, parts, stdio });
  } catch (e) {
    tracker.failed();
    throw e;
  } finally {
    for (const fd of o.tty ? [nul, OUT_FD] : [nul, OUT_FD, ERR_FD]) closeSync(fd);
  }
  try {
    await c.ready;
  } catch (e) {
    tracker.failed();
    reportError(e);
    await c.exited.catch(() => {}); // its parts clean up once it has ended
    return 1;
  }
  // The monitor died before PID 1 set its parent-death signal (the plan does it before exec): PID 1 is
  // nobody's now. End it here, as the signal would have.
  if (process.ppid !== monitor.pid) {
    c.kill('SIGKILL');
    tracker.failed();
    throw new NsboxError('the container monitor died while the container started');
  }
  tracker.running();
  writeSync(MONITOR_FD, `${c.pid} ${tracker.id}\n`);
  closeSync(MONITOR_FD);
  report({ id: tracker.id });
  // The container is the monitor's now: not waited for here.
  process.exit(0);
}

/** `nsbox nsbox-setup RUN-ARGS...`: exits once the container runs, or failed to start. */
export async function command(_name: string, argv: string[]): Promise<number> {
  try {
    return await main(argv);
  } catch (e) {
    reportError(e);
    return 1;
  }
}
