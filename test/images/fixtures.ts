// Test images built offline: the busybox rootfs as an OCI layout (umoci), then archives (skopeo).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * An OCI image layout in `dir`, written by hand (no tool): the layers' blobs (each as its media type says:
 * a tar, or a gzipped one), a config with `cmd` and the layers' uncompressed digests, and one manifest in
 * index.json with `annotations` (its name).
 */
export function writeOciLayout(
  dir: string,
  o: {
    layers: { mediaType: string; data: Buffer; diffId: string }[];
    cmd: string[];
    annotations: Record<string, string>;
  },
): void {
  mkdirSync(`${dir}/blobs/sha256`, { recursive: true });
  const blob = (b: Buffer | string) => {
    const digest = sha256(b);
    writeFileSync(`${dir}/blobs/sha256/${digest.slice(7)}`, b);
    return { digest, size: Buffer.byteLength(b) };
  };
  const layers = o.layers.map((l) => ({ mediaType: l.mediaType, ...blob(l.data) }));
  const config = blob(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: o.cmd },
      rootfs: { type: 'layers', diff_ids: o.layers.map((l) => l.diffId) },
    }),
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers,
    }),
  );
  writeFileSync(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  const index = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: o.annotations };
  writeFileSync(`${dir}/index.json`, JSON.stringify({ schemaVersion: 2, manifests: [index] }));
}
