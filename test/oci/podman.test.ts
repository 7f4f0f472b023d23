// podman with nsbox-runtime as its OCI runtime (as root): an image imported from the busybox rootfs
// into a podman store of this test's own (--root/--runroot in a temp dir), so nothing comes from the
// network and the machine's store is not touched. The runtime keeps its state in its default root
// (podman's clean-up command passes no runtime flags), where this test leaves nothing.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOTFS } from '../helpers.js';

const RUNTIME = resolve(__dirname, '..', '..', 'dist', 'nsbox-runtime');
const podman = spawnSync('sh', ['-c', 'command -v podman'], { encoding: 'utf8' }).stdout.trim();
const skip = process.getuid?.() !== 0 ? 'needs root' : !podman ? 'podman is not installed' : '';
const dir = mkdtempSync(join(tmpdir(), 'nsbox-oci-podman-'));
const IMAGE = 'localhost/nsbox-oci-busybox:latest';
const STATE = '/run/nsbox-runtime';

const GLOBAL = [
  '--root',
  `${dir}/root`,
  '--runroot',
  `${dir}/runroot`,
  '--storage-driver',
  'vfs',
  '--cgroup-manager',
  'cgroupfs',
  '--events-backend',
  'none',
  '--runtime',
  RUNTIME,
];
// This host's root lacks CAP_SYS_RESOURCE: podman's default nofile and nproc cannot be granted.
const RUN = ['--ulimit', 'nofile=1024:20000', '--ulimit', 'nproc=1024:1024', '--network', 'none'];

/** podman to its exit, output in files (a detached container keeps pipes open). */
async function pm(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [o, e] = [`${dir}/.stdout`, `${dir}/.stderr`];
  const fds = [openSync(o, 'w'), openSync(e, 'w')];
  try {
    const p = spawn(podman, [...GLOBAL, ...args], { stdio: ['ignore', fds[0], fds[1]] });
    const code = await new Promise<number | null>((res) => p.on('exit', (c) => res(c)));
    return { code, stdout: readFileSync(o, 'utf8'), stderr: readFileSync(e, 'utf8') };
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
}

const ours = new Set<string>();
const stateLeft = () => (existsSync(STATE) ? readdirSync(STATE).filter((id) => ours.has(id)) : []);
const cgroupsLeft = () => [...ours].filter((id) => existsSync(`/sys/fs/cgroup/memory/libpod_parent/libpod-${id}`));

beforeAll(async () => {
  if (skip) return;
  const tar = spawnSync('tar', ['-C', ROOTFS, '-cf', `${dir}/busybox.tar`, '.']);
  expect(tar.status).toBe(0);
  const r = await pm('import', '--quiet', `${dir}/busybox.tar`, IMAGE);
  expect(r.code).toBe(0);
}, 120_000);

afterAll(async () => {
  if (!skip) {
    await pm('rm', '-af');
    await pm('rmi', '-af');
  }
  rmSync(dir, { recursive: true, force: true });
  try {
    rmdirSync(STATE); // the runtime's default root, when this test made it and nothing else is in it
  } catch {
    /* in use, or not there */
  }
}, 120_000);

describe.skipIf(!!skip)(`podman --runtime nsbox-runtime${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('run --rm IMAGE echo hi', async () => {
    const r = await pm('run', '--rm', ...RUN, IMAGE, 'echo', 'hi');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hi\n');
    expect(r.code).toBe(0);
  });

  it('passes the exit code through', async () => {
    const r = await pm('run', '--rm', ...RUN, IMAGE, 'sh', '-c', 'exit 3');
    expect(r.code).toBe(3);
  });

  it('run -t gets a terminal through the console socket', async () => {
    const r = await pm('run', '--rm', '-t', ...RUN, IMAGE, 'sh', '-c', 'test -t 0 && test -t 1 && echo tty');
    expect(r.stdout).toBe('tty\r\n');
    expect(r.code).toBe(0);
  });

  it('run -d, exec, top, pause and unpause, stop, rm: nothing left', async () => {
    const d = await pm('run', '-d', ...RUN, IMAGE, 'sleep', '1000');
    expect(d.code).toBe(0);
    const id = d.stdout.trim();
    ours.add(id);
    expect(JSON.parse(readFileSync(`${STATE}/${id}/state.json`, 'utf8')).bundle).toContain(id);
    const ex = await pm('exec', id, 'sh', '-c', 'echo in; exit 5');
    expect(ex.stdout).toBe('in\n');
    expect(ex.code).toBe(5);
    const t = await pm('exec', '-t', id, 'sh', '-c', 'test -t 0 && echo tty');
    expect(t.stdout).toBe('tty\r\n');
    const top = await pm('top', id);
    expect(top.stdout).toMatch(/sleep 1000/);
    expect((await pm('pause', id)).code).toBe(0);
    expect((await pm('inspect', '--format', '{{.State.Status}}', id)).stdout.trim()).toBe('paused');
    expect((await pm('unpause', id)).code).toBe(0);
    expect((await pm('inspect', '--format', '{{.State.Status}}', id)).stdout.trim()).toBe('running');
    expect((await pm('stop', '-t', '1', id)).code).toBe(0);
    expect((await pm('inspect', '--format', '{{.State.Status}}', id)).stdout.trim()).toBe('exited');
    expect((await pm('rm', id)).code).toBe(0);
    expect(stateLeft()).toEqual([]);
    expect(cgroupsLeft()).toEqual([]);
  });
});
