// Choosing the manifest for this machine from an OCI index or a Docker manifest list.
import { NsboxError } from '../errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}
export interface IndexEntry {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

const ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** This machine's platform, as image indexes spell it. */
export function hostPlatform(): Platform {
  return {
    os: 'linux',
    architecture: ARCH[process.arch] ?? process.arch,
    ...(process.arch === 'arm64' ? { variant: 'v8' } : {}),
  };
}

/** `--platform os/arch[/variant]`. */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant, extra] = s.split('/');
  if (!os || !architecture || extra !== undefined)
    throw new NsboxError(`invalid platform: ${s} (expected os/arch[/variant], e.g. linux/amd64)`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export const formatPlatform = (p: Platform): string => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;

/** The entry for `want`; attestation manifests and unknown/unknown entries are never chosen. */
export function choosePlatform(entries: IndexEntry[], want: Platform, what: string): IndexEntry {
  const real = entries.filter(
    (e) =>
      e.platform &&
      e.platform.os !== 'unknown' &&
      e.platform.architecture !== 'unknown' &&
      e.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
  );
  const match = real.filter((e) => e.platform!.os === want.os && e.platform!.architecture === want.architecture);
  // A variant narrows the choice when given; arm64's v8 is also what an entry without a variant means.
  const exact =
    match.find((e) => (e.platform!.variant ?? '') === (want.variant ?? '')) ??
    match.find((e) => want.variant === 'v8' && !e.platform!.variant) ??
    (want.variant ? undefined : match[0]);
  if (exact) return exact;
  const have = real.map((e) => formatPlatform(e.platform!)).join(', ') || 'none';
  throw new NsboxError(`${what} has no image for ${formatPlatform(want)} (it has: ${have}; see --platform)`, {
    step: 'platform',
  });
}
