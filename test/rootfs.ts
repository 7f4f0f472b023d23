import { resolve } from 'node:path';

/** The busybox rootfs built by rootfs-scripts/busybox.sh for the tests. */
export const ROOTFS = resolve(__dirname, '..', '.rootfs', 'busybox');
