// An OCI image layout tar of a rootfs directory (one layer), for `ctr image import`: nothing comes
// from a registry.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sha256, writeOciLayout } from '../images/fixtures.js';

export function ociImageTar(rootfs: string, out: string, name: string): void {
  const d = mkdtempSync(join(tmpdir(), 'nsbox-oci-image-'));
  try {
    const tar = execFileSync('tar', ['-C', rootfs, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
    const layer = {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      data: gzipSync(tar),
      diffId: sha256(tar),
    };
    writeOciLayout(d, {
      layers: [layer],
      cmd: ['sh'],
      annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': 'latest' },
    });
    execFileSync('tar', ['-C', d, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}
