// `nsbox-runtime exec`: a process in a created or running container, as `nsbox exec` starts one
// (src/exec/exec.ts): the container's namespaces and cgroups, and its credential steps saved at
// create (user, capabilities, no_new_privs, seccomp). The process comes from --process FILE (a
// runtime-spec process object, as podman and containerd pass it) or from the arguments.
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import { credsFor } from '../cli/exec.js';
import { differentNamespaces, Exec } from '../exec/exec.js';
import { NAMESPACES, openPidfd } from '../state/proc.js';
import { writeAtomic } from './files.js';
import type { Store } from './state.js';

export interface ExecOptions {
  process?: string;
  args: string[];
  detach: boolean;
  pidFile?: string;
  tty: boolean;
  consoleSocket?: string;
  cwd?: string;
  env: string[];
  user?: string;
}

interface Proc {
  args: string[];
  env?: string[];
  cwd?: string;
  terminal?: boolean;
  user?: { uid: number; gid: number; additionalGids?: number[] };
}

const fail = (path: string, what: string): never => {
  throw new NsboxError(`process.json: ${path}: ${what}`, { field: path });
};

function strings(v: unknown, path: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && !x.includes('\0')))
    fail(path, 'must be a list of strings');
  return v as string[];
}

const id = (v: unknown, path: string) =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32 - 1
    ? (v as number)
    : fail(path, 'must be an id');

/** A runtime-spec process object from a file (bounded, type-checked). */
export function readProcess(file: string): Proc {
  const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > 1 << 20) throw new NsboxError(`${file}: not a regular file of at most 1 MiB`);
    const buf = Buffer.alloc(st.size);
    text = buf.subarray(0, readSync(fd, buf, 0, st.size, 0)).toString('utf8');
  } finally {
    closeSync(fd);
  }
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw new NsboxError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) fail('$', 'must be an object');
  const out: Proc = { args: strings(p.args, '$.args') };
  if (out.args.length === 0) fail('$.args', 'must name a command');
  if (p.env !== undefined) out.env = strings(p.env, '$.env');
  if (p.cwd !== undefined) {
    if (typeof p.cwd !== 'string' || !p.cwd.startsWith('/')) fail('$.cwd', 'must be an absolute path');
    out.cwd = p.cwd as string;
  }
  if (p.terminal !== undefined) {
    if (typeof p.terminal !== 'boolean') fail('$.terminal', 'must be true or false');
    out.terminal = p.terminal as boolean;
  }
  if (p.user !== undefined) {
    const u = p.user as Record<string, unknown>;
    if (!u || typeof u !== 'object') fail('$.user', 'must be an object');
    out.user = { uid: id(u.uid, '$.user.uid'), gid: id(u.gid, '$.user.gid') };
    if (u.additionalGids !== undefined) {
      if (!Array.isArray(u.additionalGids)) fail('$.user.additionalGids', 'must be a list');
      out.user.additionalGids = (u.additionalGids as unknown[]).map((g, i) => id(g, `$.user.additionalGids[${i}]`));
    }
  }
  return out;
}

/** Runs the exec; resolves with its exit status (0 once started with --detach). */
export async function execIn(store: Store, cid: string, o: ExecOptions): Promise<number> {
  const s = store.get(cid);
  const status = store.status(s);
  if (status !== 'running' && status !== 'created')
    throw new NsboxError(`cannot exec in container "${cid}": it is ${status}`, { field: 'id' });
  const p: Proc = o.process ? readProcess(o.process) : { args: o.args };
  if (p.args.length === 0) throw new NsboxError('exec: no command given', { field: 'args' });
  const terminal = !!p.terminal || o.tty;
  if (terminal && !o.consoleSocket)
    throw new NsboxError('exec: a terminal needs --console-socket', { field: 'console-socket' });
  let env = p.env ?? s.exec.env;
  for (const kv of o.env) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new NsboxError(`exec: invalid -e ${kv} (expected NAME=VALUE)`, { field: 'env' });
    env = [...env.filter((e) => !e.startsWith(kv.slice(0, eq + 1))), kv];
  }
  let user = p.user ? { uid: p.user.uid, gid: p.user.gid, groups: p.user.additionalGids ?? [] } : null;
  if (o.user) {
    const m = /^(\d+)(?::(\d+))?$/.exec(o.user);
    if (!m) throw new NsboxError(`exec: invalid --user ${o.user} (UID[:GID])`, { field: 'user' });
    user = { uid: Number(m[1]), gid: Number(m[2] ?? 0), groups: [] };
  }
  // The container's own user keeps its credential steps as saved (its groups, its capabilities).
  if (user && user.uid === s.exec.uid && user.gid === s.exec.gid) user = null;
  const pidfd = openPidfd(s.pid, s.pidStart);
  if (pidfd === null) throw new NsboxError(`cannot exec in container "${cid}": it is not running`, { field: 'id' });
  let tty: { master: number; slave: number; path: string } | undefined;
  let x: Exec;
  try {
    let stdio: [number, number, number] = [0, 1, 2];
    if (terminal) {
      tty = native.openpty();
      native.setWinsize(tty.master, 24, 80);
      stdio = [tty.slave, tty.slave, tty.slave];
    }
    x = new Exec({
      pid: s.pid,
      pidfd,
      namespaces: differentNamespaces(s.pid, NAMESPACES),
      cgroup: true,
      command: p.args,
      env,
      cwd: o.cwd ?? p.cwd ?? s.exec.cwd,
      creds: credsFor(s.exec.creds, user),
      stdio,
      tty: terminal,
    });
    if (tty) native.native.sendFd(o.consoleSocket!, tty.master);
  } finally {
    closeSync(pidfd);
    if (tty) {
      closeSync(tty.master);
      closeSync(tty.slave);
    }
  }
  await x.ready;
  if (o.pidFile) writeAtomic(o.pidFile, String(x.pid));
  if (o.detach) return 0;
  return (await x.exited).status;
}
