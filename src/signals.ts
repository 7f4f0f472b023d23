// A container behaves like the process it is: a signal sent to it ends it as it would end that
// process outside, unless the process handles it. The kernel protects a PID namespace's init — PID 1
// ignores every signal it has no handler for (SIGKILL and SIGSTOP from outside excepted) — so
// where PID 1 neither catches nor ignores a signal whose default action is to end the process, nsbox
// does what the kernel would have done: it ends the container (SIGKILL to PID 1, which takes every
// process of the PID namespace with it) and reports it as killed by that signal. `docker` mode keeps
// Docker's behaviour: the signal is delivered and nothing more.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { NsboxError } from './errors.js';
import * as native from './native.js';

export type SignalMode = 'process' | 'docker';
export const SIGNAL_MODES: readonly SignalMode[] = ['process', 'docker'];

const S = constants.signals;
/** Signals whose default action does not end a process: ignore, stop, continue. */
const NOT_FATAL = new Set<number>([
  S.SIGCHLD,
  S.SIGCONT,
  S.SIGURG,
  S.SIGWINCH,
  S.SIGSTOP,
  S.SIGTSTP,
  S.SIGTTIN,
  S.SIGTTOU,
]);

/** The masks of /proc/PID/status (caught, ignored, blocked: a blocked one waits for sigwait, as --init
 *  takes them), or null when it is gone. */
function dispositions(pid: number): { caught: bigint; ignored: bigint; blocked: bigint } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const mask = (key: string) => BigInt(`0x${new RegExp(`^${key}:\\s*([0-9a-f]+)$`, 'm').exec(text)?.[1] ?? '0'}`);
  return { caught: mask('SigCgt'), ignored: mask('SigIgn'), blocked: mask('SigBlk') };
}

/** rt_sigtimedwait's number: an init that waits for signals there (nsbox's --init, tini) takes them
 *  all, yet shows none blocked while it waits (the kernel unblocks the awaited set meanwhile). */
const SIGTIMEDWAIT: Partial<Record<string, number>> = { x64: 128, arm64: 137 };

function waitingForSignals(pid: number): boolean {
  try {
    return Number(readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0]) === SIGTIMEDWAIT[process.arch];
  } catch {
    return false;
  }
}

/**
 * Whether `sig` would end process `pid` were it not a namespace's init: its default action ends a
 * process, and the process neither catches, ignores, blocks nor waits for it.
 */
export function endsUnhandled(pid: number, sig: number): boolean {
  if (sig === S.SIGKILL || NOT_FATAL.has(sig) || sig < 1 || sig > 64) return false;
  const d = dispositions(pid);
  if (!d || waitingForSignals(pid)) return false;
  const bit = 1n << BigInt(sig - 1);
  return ((d.caught | d.ignored | d.blocked) & bit) === 0n;
}

/**
 * Send `sig` to a container's PID 1 through its pidfd. In 'process' mode, where the kernel would drop
 * it (a new PID namespace, no handler), PID 1 is killed instead; returns true then, so the caller can
 * report the container as ended by `sig`.
 */
export function deliver(pidfd: number, pid: number, sig: number, mode: SignalMode, ownPidns: boolean): boolean {
  const emulate = mode === 'process' && ownPidns && endsUnhandled(pid, sig);
  native.pidfdSendSignal(pidfd, emulate ? S.SIGKILL : sig);
  return emulate;
}

export function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(S)) if (num === n) return name as NodeJS.Signals;
  return null;
}

export function signalNumber(sig: NodeJS.Signals | number): number {
  if (typeof sig === 'number') return sig;
  const n = (S as Record<string, number>)[sig];
  if (n === undefined) throw new NsboxError(`unknown signal: ${sig}`, { step: 'signal' });
  return n;
}
