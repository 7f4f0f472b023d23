// Installs what the tests need from Debian when missing (as root; scripts/test-deps.sh), and builds
// the busybox rootfs the tests run in, once.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOTFS } from './rootfs.js';

export default function setup(): void {
  execFileSync('sh', [resolve(__dirname, '..', 'scripts', 'test-deps.sh')], { stdio: 'inherit' });
  if (!existsSync(`${ROOTFS}/bin/busybox`)) {
    execFileSync('sh', ['rootfs-scripts/busybox.sh', ROOTFS], { stdio: 'inherit' });
  }
}
