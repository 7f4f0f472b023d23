// `nsbox images`, `rmi`, `import`, `image ls|inspect|rm|prune|import|pull`: the local image store.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { importArchive } from '../images/import.js';
import { parsePlatform } from '../images/platform.js';
import { familiarName, parseReference } from '../images/reference.js';
import { Store, type ImageRecord } from '../images/store.js';

const IMAGES_HELP = `Usage: nsbox images [-q] [--no-trunc] [--format table|json]

List the images in the store (${'$'}NSBOX_STORAGE_DIR, /var/lib/nsbox as root, else ~/.local/share/nsbox).
  -q, --quiet      only image ids
      --no-trunc   full ids
      --format F   table (default) or json`;

const RMI_HELP = `Usage: nsbox rmi [-f] IMAGE...

Remove a name from an image; an image left without names (or named by its id) is removed with
the layers no other image uses. Refused while a container uses it, unless -f (the container
keeps its layers until it is removed).`;

const IMPORT_HELP = `Usage: nsbox import [--name NAME] [--platform OS/ARCH] FILE|-

Import a docker save archive, an OCI archive (skopeo copy ... oci-archive:FILE) or a plain root
filesystem tar (tar -C rootfs -c ., optionally gzipped) into the store. Names come from the
archive's own tags; --name gives the (first) image a name of its own.`;

const IMAGE_HELP = `Usage: nsbox image COMMAND

  ls, list          list images (as nsbox images)
  inspect IMAGE...  the image's record and config as JSON
  rm IMAGE...       remove images (as nsbox rmi)
  prune             remove layers no image or container uses
  import FILE|-     import an archive (as nsbox import)
  pull REF          pull from a registry (as nsbox pull)`;

const help = (text: string): number => {
  process.stdout.write(`${text}\n`);
  return 0;
};

/** Sizes as docker prints them (SI units). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)}${units[i]}`;
}

function ago(iso: string | undefined): string {
  if (!iso || Number.isNaN(Date.parse(iso))) return 'N/A';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  const [n, unit] =
    s < 60
      ? [s, 'second']
      : s < 3600
        ? [Math.round(s / 60), 'minute']
        : s < 172800
          ? [Math.round(s / 3600), 'hour']
          : s < 86400 * 60
            ? [Math.round(s / 86400), 'day']
            : s < 86400 * 730
              ? [Math.round(s / (86400 * 30)), 'month']
              : [Math.round(s / (86400 * 365)), 'year'];
  return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')}\n`;
}

/** [repository, tag] pairs of an image, ['<none>', '<none>'] when it has no name. */
function repoTags(img: ImageRecord): [string, string][] {
  if (img.names.length === 0) return [['<none>', '<none>']];
  return img.names.map((n) => {
    const r = parseReference(n);
    return [familiarName(r), r.tag ?? '<none>'];
  });
}

function images(argv: string[]): number {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'quiet', short: 'q' },
      { long: 'no-trunc' },
      { long: 'format', value: 'single' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) return help(IMAGES_HELP);
  const format = (o.format as string | undefined) ?? 'table';
  if (format !== 'table' && format !== 'json') throw new NsboxError(`invalid --format: ${format} (table or json)`);
  const store = new Store();
  let list = store.images().sort((a, b) => (b.added < a.added ? -1 : b.added > a.added ? 1 : 0)); // no ICU
  if (positionals.length) {
    const want = parseReference(positionals[0]);
    list = list.filter((i) =>
      i.names.some((n) => {
        const r = parseReference(n);
        return r.registry === want.registry && r.repository === want.repository;
      }),
    );
  }
  const short = (id: string) => (o['no-trunc'] ? id : id.slice(7, 19));
  if (o.quiet) process.stdout.write([...new Set(list.map((i) => short(i.id)))].map((id) => `${id}\n`).join(''));
  else if (format === 'json') {
    process.stdout.write(
      `${JSON.stringify(
        list.map((i) => ({
          id: i.id,
          names: i.names,
          digests: i.digests,
          created: i.created ?? null,
          added: i.added,
          size: i.size,
          layers: i.layers.length,
        })),
        null,
        1,
      )}\n`,
    );
  } else {
    const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
    for (const i of list)
      for (const [repo, tag] of repoTags(i)) rows.push([repo, tag, short(i.id), ago(i.created), humanSize(i.size)]);
    process.stdout.write(table(rows));
  }
  return 0;
}

/** Removes one name, or the image; prints what docker prints. */
function rmiOne(store: Store, ref: string, force: boolean): void {
  const img = store.find(ref);
  if (!img) throw new NsboxError(`no such image: ${ref}`);
  const byName = img.names.find((n) => {
    try {
      return store.find(n)?.id === img.id && sameName(n, ref);
    } catch {
      return false;
    }
  });
  if (byName && img.names.length > 1) {
    store.untag(byName);
    process.stdout.write(`Untagged: ${byName}\n`);
    return;
  }
  const users = store.containers().filter((c) => c.image === img.id);
  if (users.length && !force) {
    throw new NsboxError(
      `image ${ref} is used by container ${users.map((c) => c.id).join(', ')}: remove it first, or use rmi -f`,
    );
  }
  for (const n of img.names) process.stdout.write(`Untagged: ${n}\n`);
  store.removeImage(img.id);
  process.stdout.write(`Deleted: ${img.id}\n`);
  store.prune();
}

function sameName(full: string, ref: string): boolean {
  try {
    const a = parseReference(full),
      b = parseReference(ref);
    return a.registry === b.registry && a.repository === b.repository && a.tag === b.tag && !b.digest;
  } catch {
    return false;
  }
}

function rmi(argv: string[]): number {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'force', short: 'f' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) return help(RMI_HELP);
  if (!positionals.length) throw new NsboxError('rmi needs an image name or id');
  const store = new Store();
  let code = 0;
  for (const ref of positionals) {
    try {
      rmiOne(store, ref, !!o.force);
    } catch (e) {
      if (!(e instanceof NsboxError)) throw e;
      process.stderr.write(`nsbox: ${e.message}\n`);
      code = 1;
    }
  }
  return code;
}

function inspect(argv: string[]): number {
  const { options: o, positionals } = parseArgs(argv, [{ long: 'help', short: 'h' }], Infinity);
  if (o.help)
    return help(
      "Usage: nsbox image inspect IMAGE...\n\nThe image's record in the store and its config, as a JSON array.",
    );
  if (!positionals.length) throw new NsboxError('image inspect needs an image name or id');
  const store = new Store();
  const out = positionals.map((ref) => {
    const img = store.find(ref);
    if (!img) throw new NsboxError(`no such image: ${ref}`);
    return { ...img, config: JSON.parse(store.readBlob(img.id).toString('utf8')) };
  });
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
  return 0;
}

function prune(argv: string[]): number {
  const { options: o } = parseArgs(
    argv,
    [
      { long: 'help', short: 'h' },
      { long: 'force', short: 'f' },
      { long: 'all', short: 'a' },
    ],
    Infinity,
  );
  if (o.help) return help('Usage: nsbox image prune\n\nRemove layers that no image and no container uses.');
  const removed = new Store().prune();
  for (const l of removed) process.stdout.write(`Deleted layer: ${l}\n`);
  process.stdout.write(`${removed.length} layer${removed.length === 1 ? '' : 's'} removed\n`);
  return 0;
}

async function importCmd(argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'name', value: 'single' },
      { long: 'platform', value: 'single' },
      { long: 'quiet', short: 'q' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) return help(IMPORT_HELP);
  if (positionals.length !== 1) throw new NsboxError('import needs one FILE (or - for standard input)');
  const file = positionals[0];
  const platform = o.platform ? parsePlatform(o.platform as string) : undefined;
  let input: Readable;
  if (file === '-') input = process.stdin;
  else {
    input = createReadStream(file);
    await new Promise<void>((res, rej) => {
      input.once('open', () => res());
      input.once('error', (e: NodeJS.ErrnoException) =>
        rej(new NsboxError(`cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`)),
      );
    });
  }
  const imgs = await importArchive(new Store(), input, {
    name: o.name as string | undefined,
    platform,
    warn: (m) => process.stderr.write(`nsbox: warning: ${m}\n`),
  });
  for (const i of imgs) {
    if (o.quiet) process.stdout.write(`${i.id}\n`);
    else process.stdout.write(`Loaded image: ${i.loaded.length ? i.loaded.join(', ') : i.id}\n`);
  }
  return 0;
}

export async function command(name: string, argv: string[]): Promise<number> {
  if (name === 'images') return images(argv);
  if (name === 'rmi') return rmi(argv);
  if (name === 'import') return importCmd(argv);
  if (name === 'pull') return (await import('./pull.js')).command(name, argv);
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'ls':
    case 'list':
      return images(rest);
    case 'inspect':
      return inspect(rest);
    case 'rm':
      return rmi(rest);
    case 'prune':
      return prune(rest);
    case 'import':
      return importCmd(rest);
    case 'pull':
      return (await import('./pull.js')).command('pull', rest);
    case undefined:
    case '--help':
    case '-h':
      return help(IMAGE_HELP);
    default:
      throw new NsboxError(`unknown image command: ${sub} (see nsbox image --help)`);
  }
}
