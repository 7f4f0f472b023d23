// containerd with nsbox-runtime as the runc binary of its runc v2 shim (the path Kubernetes nodes
// use), as root: a containerd of this test's own (root, state, socket in a temp dir), an image
// imported from the busybox rootfs, the runtime's state in the temp dir too (--runc-root).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOTFS } from '../helpers.js';
import { ociImageTar } from './image.js';

const RUNTIME = resolve(__dirname, '..', '..', 'dist', 'nsbox-runtime');
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
const [containerd, ctr] = [has('containerd'), has('ctr')];
const skip = process.getuid?.() !== 0 ? 'needs root' : !containerd || !ctr ? 'containerd is not installed' : '';
const dir = mkdtempSync(join(tmpdir(), 'nsbox-oci-ctd-'));
const SOCK = `${dir}/ctd.sock`;
const IMAGE = 'docker.io/library/nsbox-oci-busybox:latest';
const RUN = ['--snapshotter', 'native', '--runc-binary', RUNTIME, '--runc-root', `${dir}/runc`];
let daemon: ChildProcess | undefined;

async function c(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [o, e] = [`${dir}/.stdout`, `${dir}/.stderr`];
  const fds = [openSync(o, 'w'), openSync(e, 'w')];
  try {
    const p = spawn(ctr, ['-a', SOCK, '-n', 'nsbox-test', ...args], { stdio: ['ignore', fds[0], fds[1]] });
    const code = await new Promise<number | null>((res) => p.on('exit', (x) => res(x)));
    return { code, stdout: readFileSync(o, 'utf8'), stderr: readFileSync(e, 'utf8') };
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
}

beforeAll(async () => {
  if (skip) return;
  writeFileSync(
    `${dir}/config.toml`,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${SOCK}"`,
      '[ttrpc]',
      `  address = "${SOCK}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const log = openSync(`${dir}/containerd.log`, 'w');
  daemon = spawn(containerd, ['--config', `${dir}/config.toml`], { stdio: ['ignore', log, log] });
  closeSync(log);
  for (let i = 0; i < 200 && !existsSync(SOCK); i++) await new Promise((r) => setTimeout(r, 50));
  ociImageTar(ROOTFS, `${dir}/image.tar`, IMAGE);
  const r = await c('image', 'import', '--snapshotter', 'native', `${dir}/image.tar`);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}, 120_000);

afterAll(async () => {
  if (daemon) {
    for (const t of (await c('task', 'ls', '-q')).stdout.split('\n').filter(Boolean))
      await c('task', 'kill', '-s', 'SIGKILL', t);
    for (const t of (await c('container', 'ls', '-q')).stdout.split('\n').filter(Boolean))
      await c('container', 'rm', t);
    await c('image', 'rm', IMAGE);
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon!.on('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe.skipIf(!!skip)(`containerd with --runc-binary nsbox-runtime${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('ctr run --rm IMAGE ID echo hi, and the exit code', async () => {
    const r = await c('run', '--rm', ...RUN, IMAGE, 'hi', 'echo', 'hi');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hi\n');
    expect(r.code).toBe(0);
    expect((await c('run', '--rm', ...RUN, IMAGE, 'three', 'sh', '-c', 'exit 3')).code).toBe(3);
  });

  it('run -d, task exec, pause and resume, kill: nothing left', async () => {
    expect((await c('run', '-d', ...RUN, IMAGE, 'bg', 'sleep', '1000')).code).toBe(0);
    expect((await c('task', 'ls')).stdout).toMatch(/bg\s+\d+\s+RUNNING/);
    const ex = await c('task', 'exec', '--exec-id', 'e1', 'bg', 'sh', '-c', 'echo in; exit 2');
    expect(ex.stdout).toBe('in\n');
    expect(ex.code).toBe(2);
    expect((await c('task', 'pause', 'bg')).code).toBe(0);
    expect((await c('task', 'ls')).stdout).toMatch(/bg\s+\d+\s+PAUSED/);
    expect((await c('task', 'resume', 'bg')).code).toBe(0);
    expect((await c('task', 'kill', '-s', 'SIGKILL', 'bg')).code).toBe(0);
    for (let i = 0; i < 100 && !/STOPPED/.test((await c('task', 'ls')).stdout); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await c('task', 'rm', 'bg')).code).toBe(0);
    expect((await c('container', 'rm', 'bg')).code).toBe(0);
    expect(readdirSync(`${dir}/runc/nsbox-test`)).toEqual([]);
    expect(existsSync('/sys/fs/cgroup/memory/nsbox-test/bg')).toBe(false);
  });
});
