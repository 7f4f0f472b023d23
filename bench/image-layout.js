// The benchmarks' test image: an OCI layout of a root filesystem in 4 gzipped layers (all but /usr,
// /usr/lib, /usr/share, the rest of /usr), as a multi-layer image of a real distribution has them.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Writes the layout of `rootfs` into `dir` (image `deb`); returns its layer count and sizes. */
export function layout(dir, rootfs) {
  mkdirSync(`${dir}/blobs/sha256`, { recursive: true });
  const blob = (b) => {
    const d = sha(b);
    writeFileSync(`${dir}/blobs/sha256/${d.slice(7)}`, b);
    return { digest: d, size: b.length };
  };
  const parts = [
    ['--exclude=./usr', '.'],
    ['./usr/lib'],
    ['./usr/share'],
    ['--exclude=./usr/lib', '--exclude=./usr/share', './usr'],
  ];
  const tars = parts.map((p) => sh('tar', ['-C', rootfs, '--numeric-owner', '-c', ...p]));
  const layers = tars.map((t) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(gzipSync(t)) }));
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/bash'] },
        rootfs: { type: 'layers', diff_ids: tars.map(sha) },
      }),
    ),
  );
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers,
      }),
    ),
  );
  writeFileSync(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    `${dir}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'deb' },
        },
      ],
    }),
  );
  return {
    unpacked: tars.reduce((n, t) => n + t.length, 0),
    compressed: layers.reduce((n, l) => n + l.size, 0),
    layers: layers.length,
  };
}
