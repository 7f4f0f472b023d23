// Rootless fail-open (issue 10, class 8): as an ordinary user, `exec --target` of a root process
// ran the command in the host's namespaces and exited 0 — the namespaces it could not see were
// left out. A namespace that cannot be joined is an error (125, one line naming it).
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCopy, createUser, nsboxAs, removeUser, scratch, type TestUser } from '../userns/setup.js';

let dir: string;
let cli: string;
let user: TestUser;
let victim: ChildProcess;

beforeAll(() => {
  dir = scratch();
  cli = cliCopy(dir);
  user = createUser('nsboxatk', dir);
  // A root process in namespaces of its own: its mount, UTS and network namespaces are not ours.
  victim = spawn('unshare', ['--mount', '--uts', '--net', '--ipc', 'sleep', '600'], { stdio: 'ignore' });
});
afterAll(() => {
  victim?.kill('SIGKILL');
  try {
    removeUser(user);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

describe('exec --target as an ordinary user', () => {
  it('of a root process: refused, naming the namespace, and nothing runs', async () => {
    for (const [pid, flags, ns] of [
      [victim.pid!, ['--mount', '--uts', '--net'], 'mount'],
      [victim.pid!, ['--net'], 'net'],
      [1, ['--mount', '--uts', '--net'], 'mount'],
      [1, [], 'user'],
    ] as const) {
      const script = 'echo ran; readlink /proc/self/ns/mnt';
      const r = await nsboxAs(user, cli, ['exec', '--target', String(pid), ...flags, 'sh', '-c', script]);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`nsbox: cannot join the ${ns} namespace of process ${pid}: permission denied\n`);
      expect(r.code).toBe(125);
    }
  });

  it('of a process that is gone: refused', async () => {
    const r = await nsboxAs(user, cli, ['exec', '--target', '4194303', '--net', 'true']);
    expect(r.stderr).toBe('nsbox: no such process: 4194303\n');
    expect(r.code).toBe(125);
  });
});
