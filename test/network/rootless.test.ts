// Rootless networking: an ordinary user (made for this test) publishes a port with -p, which
// rootless means pasta (user-mode, no host devices); the port answers on the host's loopback, and
// pasta is gone when the container is.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectOursLeft, ours } from './util.js';
import { cliCopy, createUser, nsboxAs, removeUser, rootfsCopy, scratch, type TestUser } from '../userns/setup.js';

let dir: string;
let rootfs: string;
let cli: string;
let user: TestUser;

beforeAll(() => {
  dir = scratch();
  rootfs = rootfsCopy(dir);
  cli = cliCopy(dir);
  user = createUser('nsboxnettest', dir);
  mkdirSync(`${rootfs}/www`, { recursive: true });
  writeFileSync(`${rootfs}/www/index.html`, 'hello rootless\n');
});
afterAll(() => {
  try {
    removeUser(user);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

let before: ReturnType<typeof ours>;
beforeEach(() => {
  before = ours(dir, rootfs);
});
afterEach(async () => {
  await expectOursLeft(dir, rootfs, before);
});

const pastas = () => {
  try {
    return execFileSync('pgrep', ['-u', String(user.uid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch {
    return [];
  }
};

describe('rootless -p through pasta', () => {
  it('answers on the host and leaves no pasta behind', async () => {
    const script =
      'httpd -p 80 -h /www; i=0; while [ $i -lt 100 ] && [ ! -e /tmp/done ]; do sleep 0.1; i=$((i+1)); done';
    const run = nsboxAs(user, cli, ['run', '--name', 'rl', '-p', '127.0.0.1:28280:80', rootfs, 'sh', '-c', script]);
    let text = '';
    for (let i = 0; i < 80 && !text; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        text = await (await fetch('http://127.0.0.1:28280/', { signal: AbortSignal.timeout(2000) })).text();
      } catch {
        /* not yet */
      }
    }
    expect(text).toBe('hello rootless\n');
    const port = await nsboxAs(user, cli, ['port', 'rl']);
    expect(port.stdout).toBe('80/tcp -> 127.0.0.1:28280\n');
    await nsboxAs(user, cli, ['exec', 'rl', 'touch', '/tmp/done']);
    const r = await run;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 0; i < 50 && pastas().length; i++) await new Promise((res) => setTimeout(res, 100));
    expect(pastas()).toEqual([]);
  });

  it("--network slirp4netns: outbound only, no way to the host's loopback, and it is gone after", async () => {
    const server = (await import('node:net')).createServer((c) => c.end('host loopback\n'));
    await new Promise<void>((r) => server.listen(28281, '127.0.0.1', r));
    try {
      const script = 'ip -4 -o addr show tap0; nc -w 2 10.0.2.2 28281 </dev/null 2>/dev/null || echo refused';
      const r = await nsboxAs(user, cli, ['run', '--network', 'slirp4netns', rootfs, 'sh', '-c', script]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/tap0\s+inet 10\.0\.2\.100\/24/);
      expect(r.stdout).toMatch(/refused\n$/);
    } finally {
      server.close();
    }
    for (let i = 0; i < 50 && pastas().length; i++) await new Promise((res) => setTimeout(res, 100));
    expect(pastas()).toEqual([]);
  });

  it('--network slirp4netns -p: published through its API socket, answers on the host, gone after', async () => {
    // Its own marker: the rootfs copy is shared with the other tests.
    const script =
      'rm -f /tmp/sl-done; httpd -p 80 -h /www; ' +
      'i=0; while [ $i -lt 100 ] && [ ! -e /tmp/sl-done ]; do sleep 0.1; i=$((i+1)); done';
    const args = ['run', '--name', 'sl', '--network', 'slirp4netns', '-p', '127.0.0.1:28282:80'];
    const run = nsboxAs(user, cli, [...args, rootfs, 'sh', '-c', script]);
    let text = '';
    for (let i = 0; i < 80 && !text; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        text = await (await fetch('http://127.0.0.1:28282/', { signal: AbortSignal.timeout(2000) })).text();
      } catch {
        /* not yet */
      }
    }
    expect(text).toBe('hello rootless\n');
    expect((await nsboxAs(user, cli, ['port', 'sl'])).stdout).toBe('80/tcp -> 127.0.0.1:28282\n');
    // The same host port again: refused before the container starts.
    const again = await nsboxAs(user, cli, [
      'run',
      '--network',
      'slirp4netns',
      '-p',
      '127.0.0.1:28282:80',
      rootfs,
      'true',
    ]);
    expect(again.stderr).toBe('nsbox: host port 127.0.0.1:28282/tcp is already in use by another container\n');
    expect(again.code).toBe(125);
    await nsboxAs(user, cli, ['exec', 'sl', 'touch', '/tmp/sl-done']);
    const r = await run;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 0; i < 50 && pastas().length; i++) await new Promise((res) => setTimeout(res, 100));
    expect(pastas()).toEqual([]);
  });

  it('a bridge network needs root: a clear error', async () => {
    const r = await nsboxAs(user, cli, ['run', '--network', 'mynet', rootfs, 'true']);
    expect(r.stderr).toBe('nsbox: network mynet needs root (a rootless container can use --network pasta)\n');
    expect(r.code).toBe(125);
  });
});
