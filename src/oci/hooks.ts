// OCI hooks, run by the runtime in its own namespaces with the container's state on stdin: prestart
// and createRuntime once the container is made (held before exec), poststart after start, poststop
// after delete. A failing createRuntime/prestart hook fails create; poststart and poststop failures
// are warnings (the runtime spec's rules).
import { spawn } from 'node:child_process';
import { NsboxError } from '../errors.js';
import type { Hook } from './config.js';

/** Runs one hook to its end; rejects when it fails, is killed, or outlives its timeout. */
export function runHook(kind: string, h: Hook, state: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const what = `${kind} hook ${h.path}`;
    const p = spawn(h.path, h.args.slice(1), {
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
