// OCI hooks, with the container's state on stdin: prestart and createRuntime in the runtime's
// namespaces once the container is made (held before exec), then createContainer in the container's;
// startContainer in the container's at start, before it goes on; poststart after start, poststop after
// delete. A failing hook before the command runs fails create or start; poststart and poststop
// failures are warnings (the runtime spec's rules).
import { createRequire } from 'node:module';
import { closeSync, openSync, writeSync } from 'node:fs';
import * as native from '../native.js';
import { differentNamespaces, Exec } from '../exec/exec.js';
import { NAMESPACES, openPidfd } from '../state/proc.js';
import { NsboxError } from '../errors.js';
import type { Hook } from './config.js';

// node:child_process (with node:net and the streams) costs ~8 ms of every runtime call's start: loaded
// only when a hook runs.
const require = createRequire(import.meta.url);
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

/** Runs one hook to its end; rejects when it fails, is killed, or outlives its timeout. */
export function runHook(kind: string, h: Hook, state: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const what = `${kind} hook ${h.path}`;
    const p = childProcess().spawn(h.path, h.args.slice(1), {
      argv0: h.args[0] ?? h.path,
      env: Object.fromEntries(h.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
    p.stdin!.on('error', () => {}); // a hook need not read its input
    p.stdin!.end(JSON.stringify(state));
    const timer = h.timeout ? setTimeout(() => p.kill('SIGKILL'), h.timeout * 1000) : undefined;
    let timedOut = false;
    if (timer) timer.unref?.();
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new NsboxError(`${what}: ${e.message}`, { step: kind }));
    });
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      timedOut = signal === 'SIGKILL' && !!h.timeout;
      if (code === 0) return resolve();
      const why = timedOut ? `timed out after ${h.timeout}s` : signal ? `killed by ${signal}` : `exit status ${code}`;
      reject(
        new NsboxError(`${what} failed: ${why}${err.trim() ? `: ${err.trim().split('\n').pop()}` : ''}`, {
          step: kind,
        }),
      );
    });
  });
}

/** Each hook of a kind in order; the first failure rejects. */
export async function runHooks(kind: string, hooks: Hook[] | undefined, state: object): Promise<void> {
  for (const h of hooks ?? []) await runHook(kind, h, state);
}

/**
 * A hook run inside the container's namespaces (createContainer, startContainer), joined as `exec`
 * joins them, as root of the container. createContainer keeps the runtime's mount namespace (its
 * path is the host's; the container's root is already pivoted when it is held), startContainer joins
 * it too (its path is the container's).
 */
export async function runHookIn(
  kind: string,
  h: Hook,
  state: object,
  pid: number,
  pidStart: number,
  mount: boolean,
): Promise<void> {
  const what = `${kind} hook ${h.path}`;
  const pidfd = openPidfd(pid, pidStart);
  if (pidfd === null) throw new NsboxError(`${what}: the container is not running`, { step: kind });
  const [r, w] = native.pipe();
  const devnull = openSync('/dev/null', 'w');
  let x: Exec;
  try {
    writeSync(w, JSON.stringify(state)); // the state is small: the pipe holds it all
    closeSync(w);
    const names = NAMESPACES.filter((n) => mount || n !== 'mnt');
    x = new Exec({
      pid,
      pidfd,
      namespaces: differentNamespaces(pid, names),
      cgroup: true,
      command: [h.path, ...h.args.slice(1)],
      env: h.env,
      cwd: mount ? '/' : undefined,
      creds: [],
      stdio: [r, devnull, 2],
      tty: false,
    });
  } finally {
    closeSync(pidfd);
    closeSync(r);
    closeSync(devnull);
  }
  let timedOut = false;
  const kill = () => {
    timedOut = true;
    x.kill(9);
  };
  const timer = h.timeout ? setTimeout(kill, h.timeout * 1000) : undefined;
  try {
    await x.ready;
    const st = await x.exited;
    if (st.status !== 0) {
      const why = timedOut
        ? `timed out after ${h.timeout}s`
        : st.signal
          ? `killed by ${st.signal}`
          : `exit status ${st.code}`;
      throw new NsboxError(`${what} failed: ${why}`, { step: kind });
    }
  } catch (e) {
    if (e instanceof NsboxError && e.step === kind) throw e;
    throw new NsboxError(`${what} failed: ${(e as Error).message}`, { step: kind });
  } finally {
    clearTimeout(timer);
  }
}
