// Image references as docker and podman read them (distribution/reference):
//   [REGISTRY/]PATH[:TAG][@ALGO:HEX]
// `bash:4.4` is docker.io/library/bash:4.4; `user/app` is docker.io/user/app:latest; a first
// component with '.' or ':', or `localhost`, is a registry host; a digest pins the content.
import { NsboxError } from '../errors.js';

export const DEFAULT_REGISTRY = 'docker.io';

export interface Reference {
  /** Registry host[:port], e.g. docker.io, localhost:5000, [::1]:5000. */
  registry: string;
  /** Repository path inside the registry, e.g. library/bash. */
  repository: string;
  /** The tag: 'latest' when neither tag nor digest was given; undefined with a digest alone. */
  tag?: string;
  /** algo:hex, e.g. sha256:... It wins over the tag when pulling. */
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const HOST_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const NAME_MAX = 255;

function bad(ref: string, why: string): never {
  throw new NsboxError(`invalid reference format: ${JSON.stringify(ref)}: ${why}`, { step: 'reference' });
}

function validHost(ref: string, domain: string): void {
  let host = domain,
    port: string | undefined;
  if (domain.startsWith('[')) {
    const end = domain.indexOf(']');
    if (end < 0 || !/^[0-9a-fA-F:.]+$/.test(domain.slice(1, end))) bad(ref, `bad registry host ${domain}`);
    host = domain.slice(0, end + 1);
    const rest = domain.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) bad(ref, `bad registry host ${domain}`);
      port = rest.slice(1);
    }
  } else {
    const colon = domain.indexOf(':');
    if (colon >= 0) [host, port] = [domain.slice(0, colon), domain.slice(colon + 1)];
    if (!host.split('.').every((l) => HOST_LABEL.test(l))) bad(ref, `bad registry host ${domain}`);
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) bad(ref, `bad port in registry ${domain}`);
}

/** Parses and normalizes a reference; a one-line NsboxError for every invalid form. */
export function parseReference(ref: string): Reference {
  if (typeof ref !== 'string' || ref === '') bad(String(ref), 'empty');
  if (/\s/.test(ref)) bad(ref, 'contains white space');
  let rest = ref,
    digest: string | undefined,
    tag: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad(ref, `bad digest ${JSON.stringify(digest)}`);
    if (digest.startsWith('sha256:') && !SHA256.test(digest)) bad(ref, 'a sha256 digest is 64 lowercase hex digits');
    if (!digest.startsWith('sha256:') && !digest.startsWith('sha512:'))
      bad(ref, `unsupported digest algorithm in ${digest}`);
  }
  // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
  const slash = rest.lastIndexOf('/'),
    colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === '') bad(ref, 'empty tag');
    if (!TAG.test(tag)) bad(ref, `bad tag ${JSON.stringify(tag)}`);
  }
  if (rest === '') bad(ref, 'empty name');
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  const first = parts[0];
  if (
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())
  ) {
    validHost(ref, first);
    registry = first === 'index.docker.io' ? DEFAULT_REGISTRY : first;
    parts.shift();
  }
  for (const p of parts) {
    if (p === '') bad(ref, 'empty path component');
    if (p !== p.toLowerCase()) bad(ref, `repository name must be lowercase: ${p}`);
    if (!COMPONENT.test(p)) bad(ref, `bad repository name component ${JSON.stringify(p)}`);
  }
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (registry.length + 1 + repository.length > NAME_MAX) bad(ref, `name longer than ${NAME_MAX} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** registry/repository, the name an image is stored under. */
export const repoName = (r: Reference): string => `${r.registry}/${r.repository}`;

/** The full normalized form: registry/repository[:tag][@digest]. */
export function formatReference(r: Reference): string {
  return `${repoName(r)}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** What a registry is asked for: the digest when pinned, else the tag. */
export const manifestRef = (r: Reference): string => r.digest ?? r.tag ?? 'latest';

/** The short form docker prints: docker.io/library/ and docker.io/ left out. */
export function familiarName(r: Reference): string {
  let name = repoName(r);
  if (r.registry === DEFAULT_REGISTRY) name = r.repository.replace(/^library\//, '');
  return name;
}

export const isSha256 = (s: string): boolean => SHA256.test(s);
