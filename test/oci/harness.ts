// A scratch directory, a --root and bundles of the busybox rootfs for nsbox-runtime's tests (as root).
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOTFS } from '../helpers.js';

export const RUNTIME = resolve(__dirname, '..', '..', 'dist', 'nsbox-runtime');

// biome-ignore lint/suspicious/noExplicitAny: the tests edit config.json's JSON freely
export type Cfg = any;

export function harness(prefix: string) {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(scratch, 0o755);
  const state = `${scratch}/state`;
  /** Runs nsbox-runtime to its exit, output in files (a created container keeps the runtime's open). */
  async function rt(
    args: string[],
    o: { extra?: number[]; env?: NodeJS.ProcessEnv; root?: boolean; uid?: number } = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const [out, err] = [`${scratch}/.stdout`, `${scratch}/.stderr`];
    const fds = [openSync(out, 'w'), openSync(err, 'w')];
    try {
      const p = spawn(RUNTIME, [...(o.root === false ? [] : ['--root', state]), ...args], {
        stdio: ['ignore', fds[0], fds[1], ...(o.extra ?? [])],
        env: o.env,
        uid: o.uid,
        gid: o.uid,
      });
      const code = await new Promise<number | null>((res) => p.on('exit', (c) => res(c)));
      return { code, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
    } finally {
      fds.forEach((fd) => closeSync(fd));
    }
  }
  /** A bundle of runc's default spec on the busybox rootfs (read-only), /out bound from the host. */
  function bundle(name: string, args: string[], edit: (c: Cfg) => void = () => {}): { dir: string; out: string } {
    const dir = `${scratch}/${name}`;
    const out = `${dir}/out`;
    mkdirSync(out, { recursive: true });
    chmodSync(dir, 0o755);
    chmodSync(out, 0o777);
    const c = JSON.parse(readFileSync(`${scratch}/template.json`, 'utf8'));
    c.root = { path: ROOTFS, readonly: true };
    c.process.terminal = false;
    c.process.args = args;
    c.mounts.push(
      { destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
    );
    edit(c);
    writeFileSync(`${dir}/config.json`, JSON.stringify(c));
    return { dir, out };
  }
  /** runc's default config.json, made once by `spec`. */
  async function init(): Promise<void> {
    const r = await rt(['spec', '--bundle', scratch], { root: false });
    if (r.code !== 0) throw new Error(r.stderr);
    writeFileSync(`${scratch}/template.json`, readFileSync(`${scratch}/config.json`));
  }
  return { scratch, state, rt, bundle, init };
}
