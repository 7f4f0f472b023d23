// An OCI image layout tar of a rootfs directory (one layer), for `ctr image import`: nothing comes
// from a registry.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export function ociImageTar(rootfs: string, out: string, name: string): void {
  const d = mkdtempSync(join(tmpdir(), 'nsbox-oci-image-'));
  try {
    mkdirSync(`${d}/blobs/sha256`, { recursive: true });
    const blob = (buf: Buffer) => {
      const hex = createHash('sha256').update(buf).digest('hex');
      writeFileSync(`${d}/blobs/sha256/${hex}`, buf);
      return { digest: `sha256:${hex}`, size: buf.length };
    };
    const tar = execFileSync('tar', ['-C', rootfs, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const layer = blob(gzipSync(tar));
    const config = blob(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { Cmd: ['sh'] },
          rootfs: { type: 'layers', diff_ids: [diffId] },
        }),
      ),
    );
    const manifest = blob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
        }),
      ),
    );
    writeFileSync(`${d}/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(
      `${d}/index.json`,
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': 'latest' },
          },
        ],
      }),
    );
    execFileSync('tar', ['-C', d, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}
