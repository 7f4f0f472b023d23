// `nsbox pull [OPTIONS] REF`, and the progress display that `run` shares when it pulls.
import { NsboxError } from '../errors.js';
import { parseArgs, type Parsed } from './args.js';
import { humanSize } from './images.js';
import { parsePlatform } from '../images/platform.js';
import { formatReference, parseReference } from '../images/reference.js';
import { pull, type PullOptions, type PullProgress } from '../images/pull.js';
import type { ImageRecord } from '../images/store.js';

const PULL_HELP = `Usage: nsbox pull [OPTIONS] REF

Pull an image from a registry (HTTP API v2) into the store. REF is read as docker reads it:
bash:4.4 is docker.io/library/bash:4.4; a first part with '.' or ':' (or localhost) is a registry.
  -q, --quiet              no progress
      --platform OS/ARCH   the platform to pick from a multi-platform image (default: this machine's)
      --tls-verify=false   plain HTTP to the registry (loopback registries always use it)
Credentials: ~/.docker/config.json (or $REGISTRY_AUTH_FILE), as written by docker/podman login.`;

export const PULL_OPTIONS = [
  { long: 'platform', value: 'single' as const },
  { long: 'tls-verify', value: 'optional' as const },
];

/** Pull options from parsed `--platform`/`--tls-verify`. */
export function pullOptions(o: Parsed['options']): PullOptions {
  const tv = o['tls-verify'];
  if (tv !== undefined && tv !== true && tv !== 'true' && tv !== 'false')
    throw new NsboxError(`invalid --tls-verify value: ${tv} (true or false)`);
  return {
    platform: o.platform ? parsePlatform(o.platform as string) : undefined,
    tlsVerify: tv === 'false' ? false : undefined,
    warn: (m) => process.stderr.write(`nsbox: warning: ${m}\n`),
  };
}

/** Per-layer progress: redrawn lines on a terminal (bytes, rate), plain lines otherwise. */
export function progressPrinter(out: NodeJS.WriteStream): { onProgress: (p: PullProgress) => void; end(): void } {
  const layers: { p: PullProgress; start: number }[] = [];
  const short = (d: string) => d.slice(7, 19);
  if (!out.isTTY) {
    return {
      onProgress: (p) => {
        if (p.state === 'exists') out.write(`${short(p.digest)}: already exists\n`);
        else if (p.state === 'downloading' && p.bytes === 0)
          out.write(`${short(p.digest)}: downloading ${humanSize(p.total)}\n`);
        else if (p.state === 'done') out.write(`${short(p.digest)}: done\n`);
      },
      end() {},
    };
  }
  let drawn = 0,
    timer: NodeJS.Timeout | null = null;
  const line = ({ p, start }: { p: PullProgress; start: number }): string => {
    if (p.state === 'waiting') return `${short(p.digest)}: waiting`;
    if (p.state === 'exists') return `${short(p.digest)}: already exists`;
    if (p.state === 'done') return `${short(p.digest)}: done ${humanSize(p.total)}`;
    const secs = Math.max(0.001, (Date.now() - start) / 1000);
    return `${short(p.digest)}: downloading ${humanSize(p.bytes)}/${humanSize(p.total)} ${humanSize(p.bytes / secs)}/s`;
  };
  const draw = (): void => {
    timer = null;
    const text = layers.map((l) => `\x1b[2K${line(l)}\n`).join('');
    out.write(`${drawn ? `\x1b[${drawn}A` : ''}${text}`);
    drawn = layers.length;
  };
  return {
    onProgress: (p) => {
      const l = layers[p.layer];
      if (!l) layers[p.layer] = { p, start: Date.now() };
      else {
        if (l.p.state !== 'downloading' && p.state === 'downloading') l.start = Date.now();
        l.p = p;
      }
      timer ??= setTimeout(draw, 100);
    },
    end() {
      if (timer) clearTimeout(timer);
      if (layers.length) draw();
    },
  };
}

/** Pulls with the display -q leaves out; prints the digest and the name at the end. */
export async function pullShowing(
  ref: string,
  opts: PullOptions,
  quiet: boolean,
  out: NodeJS.WriteStream,
): Promise<ImageRecord> {
  const shown = quiet ? null : progressPrinter(out);
  try {
    const img = await pull(ref, { ...opts, onProgress: shown?.onProgress });
    shown?.end();
    if (!quiet) out.write(`Digest: ${img.digests[img.digests.length - 1]?.split('@')[1] ?? img.id}\n`);
    return img;
  } catch (e) {
    shown?.end();
    throw e;
  }
}

export async function command(_name: string, argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [...PULL_OPTIONS, { long: 'quiet', short: 'q' }, { long: 'help', short: 'h' }],
    Infinity,
  );
  if (o.help) {
    process.stdout.write(`${PULL_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new NsboxError('pull needs one image reference (see --help)');
  const img = await pullShowing(positionals[0], pullOptions(o), !!o.quiet, process.stdout);
  const r = parseReference(positionals[0]);
  process.stdout.write(`${r.tag ? formatReference({ ...r, digest: undefined }) : formatReference(r)}\n`);
  void img;
  return 0;
}
