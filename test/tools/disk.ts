// A stand-in for the host's disk: a loop device over a file that starts with a known secret, so
// that a read which got through would show. Detached and removed with cleanup().
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface HostDisk {
  /** The loop device, e.g. /dev/loop3. */
  loop: string;
  major: number;
  minor: number;
  /** The directory holding the image, for the test's own files. */
  dir: string;
  cleanup(): void;
}

export function hostDisk(secret: string, opts: { ext4?: boolean; size?: number } = {}): HostDisk {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-disk-'));
  const img = join(dir, 'disk.img');
  writeFileSync(img, Buffer.concat([Buffer.from(secret), Buffer.alloc(opts.size ?? 65536)]));
  if (opts.ext4) execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'root_owner=0:0', img], { stdio: 'ignore' });
  const loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
  const rdev = statSync(loop).rdev;
  return {
    loop,
    dir,
    major: (rdev >>> 8) & 0xfff,
    minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00),
    cleanup() {
      execFileSync('losetup', ['-d', loop]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
