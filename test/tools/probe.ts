// A private copy of the busybox rootfs with test/tools/probe.c built in as /bin/probe, for tests
// that make exact system calls from inside a container. Removed with cleanup().
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOTFS } from '../rootfs.js';

export interface ProbeRoot {
  /** The rootfs directory. */
  root: string;
  /** The probe binary on the host (the same file as ROOT/bin/probe). */
  probe: string;
  cleanup(): void;
}

export function probeRootfs(): ProbeRoot {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-probe-'));
  const root = join(dir, 'root');
  // Not what other tests' containers left in the shared rootfs's /tmp (fifos, nodes).
  const tmp = `${join(ROOTFS, 'tmp')}/`;
  cpSync(ROOTFS, root, { recursive: true, verbatimSymlinks: true, filter: (src) => !src.startsWith(tmp) });
  const probe = join(root, 'bin', 'probe');
  execFileSync('cc', ['-static', '-O1', '-o', probe, resolve(__dirname, 'probe.c')]);
  return { root, probe, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
