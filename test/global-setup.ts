// Builds the busybox rootfs the tests run in, once.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOTFS } from './rootfs.js';

export default function setup(): void {
  if (!existsSync(`${ROOTFS}/bin/busybox`)) {
    execFileSync('sh', ['rootfs-scripts/busybox.sh', ROOTFS], { stdio: 'inherit' });
  }
}
