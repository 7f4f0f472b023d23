// nsbox-runtime run by an ordinary user (made for this test, as test/userns does): `spec --rootless`
// maps the user to root of a user namespace; with no limits in the config and no writable cgroup
// hierarchy the container has no cgroup (runc's rule), and the life cycle works as for root.
import { spawn } from 'node:child_process';
import { chownSync, closeSync, cpSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOTFS } from '../helpers.js';
import { cliCopy, createUser, removeUser, scratch, type TestUser } from '../userns/setup.js';

const root = process.getuid?.() === 0;
let dir: string;
let runtime: string;
let user: TestUser;

beforeAll(() => {
  if (!root) return;
  dir = scratch();
  runtime = `${dirname(cliCopy(dir))}/nsbox-runtime.cjs`;
  user = createUser('nsboxoci', dir);
  cpSync(ROOTFS, `${dir}/b/rootfs`, { recursive: true, verbatimSymlinks: true });
  chownSync(`${dir}/b`, user.uid, user.gid);
});
afterAll(async () => {
  if (!root) return;
  try {
    await as(['delete', '--force', 'rl']);
    removeUser(user);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** nsbox-runtime as the user (its ids, no other groups, no capabilities), output in files. */
async function as(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [o, e] = [`${dir}/.out`, `${dir}/.err`];
  const fds = [openSync(o, 'w'), openSync(e, 'w')];
  try {
    const env = { PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: user.runtime, HOME: '/' };
    const argv = ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', '--inh-caps=-all'];
    const p = spawn('setpriv', [...argv, process.execPath, runtime, ...args], {
      cwd: `${dir}/b`,
      env,
      stdio: ['ignore', fds[0], fds[1]],
    });
    const code = await new Promise<number | null>((res) => p.on('exit', (c) => res(c)));
    return { code, stdout: readFileSync(o, 'utf8'), stderr: readFileSync(e, 'utf8') };
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
}

describe.skipIf(!root)('nsbox-runtime as an ordinary user', () => {
  it('spec --rootless, then create, start, state, kill, delete in its XDG_RUNTIME_DIR', async () => {
    expect((await as(['spec', '--rootless'])).code).toBe(0);
    const c = JSON.parse(readFileSync(`${dir}/b/config.json`, 'utf8'));
    expect(c.linux.uidMappings).toEqual([{ containerID: 0, hostID: user.uid, size: 1 }]);
    c.process.terminal = false;
    c.process.args = ['sh', '-c', 'id -u > /tmp/x; cat /proc/self/uid_map; exec sleep 1000'];
    writeFileSync(`${dir}/b/config.json`, JSON.stringify(c));

    const made = await as(['create', 'rl']);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    const state = JSON.parse((await as(['state', 'rl'])).stdout);
    expect(state).toMatchObject({ id: 'rl', status: 'created', owner: user.name });
    expect(existsSync(`${user.runtime}/nsbox-runtime/rl/state.json`)).toBe(true);
    expect(readFileSync(`/proc/${state.pid}/status`, 'utf8')).toMatch(new RegExp(`Uid:\\s+${user.uid}\\s`));

    expect((await as(['start', 'rl'])).code).toBe(0);
    expect(JSON.parse((await as(['state', 'rl'])).stdout).status).toBe('running');
    // No cgroup: pause is refused with the reason, nothing else changes.
    const p = await as(['pause', 'rl']);
    expect(p.code).not.toBe(0);
    expect(p.stderr).toMatch(/no freezer cgroup/);

    expect((await as(['kill', 'rl', 'KILL'])).code).toBe(0);
    for (let i = 0; i < 200 && JSON.parse((await as(['state', 'rl'])).stdout).status !== 'stopped'; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect((await as(['delete', 'rl'])).code).toBe(0);
    expect(existsSync(`${user.runtime}/nsbox-runtime/rl`)).toBe(false);
  });

  it('a limit it cannot apply without a cgroup is an error, and nothing is left', async () => {
    const c = JSON.parse(readFileSync(`${dir}/b/config.json`, 'utf8'));
    c.linux.resources = { pids: { limit: 10 } };
    writeFileSync(`${dir}/b/config.json`, JSON.stringify(c));
    const r = await as(['create', 'rl']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cgroup/);
    expect(existsSync(`${user.runtime}/nsbox-runtime/rl`)).toBe(false);
  });
});
