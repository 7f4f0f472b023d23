// Test images built offline: the busybox rootfs as an OCI layout (umoci), then archives (skopeo).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { ROOTFS } from '../rootfs.js';

/** An OCI layout DIR with image `bb`: busybox, then /etc/motd, then a whiteout of /etc/group. */
export function makeLayout(dir: string, cmd = '/bin/sh'): string {
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run('umoci', ['init', '--layout', dir]);
  run('umoci', ['new', '--image', `${dir}:bb`]);
  run('umoci', ['insert', '--image', `${dir}:bb`, ROOTFS, '/']);
  mkdirSync(`${dir}.files`, { recursive: true });
  writeFileSync(`${dir}.files/motd`, 'hello from layer 2\n');
  run('umoci', ['insert', '--image', `${dir}:bb`, `${dir}.files/motd`, '/etc/motd']);
  run('umoci', ['insert', '--image', `${dir}:bb`, '--whiteout', '/etc/group']);
  run('umoci', [
    'config',
    '--image',
    `${dir}:bb`,
    '--config.cmd',
    cmd,
    '--config.env',
    'FOO=bar',
    '--config.workingdir',
    '/tmp',
  ]);
  return dir;
}

export function skopeo(args: string[]): void {
  execFileSync('skopeo', ['--insecure-policy', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}
