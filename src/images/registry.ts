// A client for the registry HTTP API v2 (OCI distribution spec) over Node's own fetch: Bearer
// tokens (cached per registry and scope) and Basic credentials from the docker config, redirects
// followed by hand so Authorization never goes to another host, and errors a user can act on.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { Readable } from 'node:stream';
import { NsboxError } from '../errors.js';
import { DEFAULT_REGISTRY } from './reference.js';

export interface RegistryOptions {
  /** false: plain HTTP (and no certificate checks) for any registry. Default: HTTPS except for loopback. */
  tlsVerify?: boolean;
}

const MAX_REDIRECTS = 10;

/** The host:port the API is served from (docker.io's is registry-1.docker.io). */
export const apiHost = (registry: string): string =>
  registry === DEFAULT_REGISTRY ? 'registry-1.docker.io' : registry;

export function isLoopback(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** user:password for a registry from $REGISTRY_AUTH_FILE or ~/.docker/config.json, if any. */
export function credentials(registry: string): string | null {
  const files = [process.env.REGISTRY_AUTH_FILE, `${process.env.DOCKER_CONFIG || `${homedir()}/.docker`}/config.json`];
  const keys =
    registry === DEFAULT_REGISTRY
      ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io']
      : [registry, `https://${registry}`, `http://${registry}`];
  for (const f of files) {
    if (!f) continue;
    let auths: Record<string, { auth?: string; username?: string; password?: string }>;
    try {
      auths = JSON.parse(readFileSync(f, 'utf8')).auths ?? {};
    } catch {
      continue;
    }
    for (const k of keys) {
      const a = auths[k] ?? auths[`${k}/`];
      if (a?.auth) return Buffer.from(a.auth, 'base64').toString('utf8');
      if (a?.username && a.password) return `${a.username}:${a.password}`;
    }
  }
  return null;
}

/** Key=value pairs of a WWW-Authenticate challenge. */
export function parseChallenge(h: string): { scheme: string; params: Record<string, string> } {
  const sp = h.indexOf(' ');
  const scheme = (sp < 0 ? h : h.slice(0, sp)).toLowerCase();
  const params: Record<string, string> = {};
  const re = /([a-zA-Z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let m; (m = re.exec(sp < 0 ? '' : h.slice(sp + 1))); ) params[m[1].toLowerCase()] = m[2] ?? m[3];
  return { scheme, params };
}

export class Registry {
  private scheme: 'https' | 'http';
  private tokens = new Map<string, string>();
  private basic: string | null | undefined;

  constructor(
    readonly registry: string,
    o: RegistryOptions = {},
  ) {
    this.scheme = o.tlsVerify === false || isLoopback(registry) ? 'http' : 'https';
  }

  private url(path: string): string {
    return `${this.scheme}://${apiHost(this.registry)}/v2/${path}`;
  }

  private creds(): string | null {
    if (this.basic === undefined) this.basic = credentials(this.registry);
    return this.basic;
  }

  /** fetch that turns network failures into one-line errors naming the registry. */
  private async raw(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, redirect: 'manual' });
    } catch (e) {
      const cause = (e as { cause?: NodeJS.ErrnoException }).cause;
      const code = cause?.code ?? '';
      const host = new URL(url).host;
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
        throw new NsboxError(`cannot reach registry ${host}: unknown host`, { step: 'pull', code });
      if (code === 'ECONNREFUSED')
        throw new NsboxError(`cannot reach registry ${host}: connection refused`, { step: 'pull', code });
      if (/certificate|SSL|TLS/i.test(`${code} ${cause?.message}`)) {
        throw new NsboxError(
          `registry ${host}: TLS failed (${cause?.message ?? code}); for a registry without TLS use --tls-verify=false`,
          { step: 'pull', code },
        );
      }
      throw new NsboxError(`cannot reach registry ${host}: ${cause?.message ?? (e as Error).message}`, {
        step: 'pull',
        code,
      });
    }
  }

  /** A token for `scope` from the realm a 401 named, with Basic credentials when we have them. */
  private async token(challenge: Record<string, string>, scope: string): Promise<string> {
    const realm = challenge.realm;
    if (!realm)
      throw new NsboxError(`registry ${this.registry} sent a Bearer challenge without a realm`, { step: 'pull' });
    const u = new URL(realm);
    if (challenge.service) u.searchParams.set('service', challenge.service);
    u.searchParams.set('scope', challenge.scope ?? scope);
    const headers: Record<string, string> = {};
    const c = this.creds();
    if (c) headers.Authorization = `Basic ${Buffer.from(c).toString('base64')}`;
    const r = await this.follow(u.toString(), { headers }, false);
    if (r.status === 401 || r.status === 403)
      throw new NsboxError(
        `access denied by ${this.registry}: the token server refused ${c ? 'the credentials' : 'an anonymous token'}`,
        { step: 'pull' },
      );
    if (!r.ok)
      throw new NsboxError(`registry ${this.registry}: token server answered ${r.status} ${r.statusText}`, {
        step: 'pull',
      });
    const body = (await r.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const t = body.token ?? body.access_token;
    if (!t) throw new NsboxError(`registry ${this.registry}: the token server sent no token`, { step: 'pull' });
    return t;
  }

  /** GET with redirects followed by hand; Authorization only goes to the origin it was meant for. */
  private async follow(
    url: string,
    init: { headers: Record<string, string> },
    authOrigin: boolean | string,
  ): Promise<Response> {
    const origin = typeof authOrigin === 'string' ? authOrigin : new URL(url).origin;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers = { ...init.headers };
      if (new URL(url).origin !== origin) delete headers.Authorization;
      const r = await this.raw(url, { headers });
      if (r.status < 300 || r.status >= 400 || r.status === 304) return r;
      const loc = r.headers.get('location');
      void r.body?.cancel();
      if (!loc) throw new NsboxError(`registry ${this.registry}: redirect without a Location`, { step: 'pull' });
      url = new URL(loc, url).toString();
    }
    throw new NsboxError(`registry ${this.registry}: too many redirects`, { step: 'pull' });
  }

  /**
   * GET /v2/PATH for repository `repo`, authenticating as the registry asks. `what` names the
   * thing in errors (404 → "not found: what").
   */
  async get(repo: string, path: string, accept: string[], what: string): Promise<Response> {
    const scope = `repository:${repo}:pull`;
    const url = this.url(`${repo}/${path}`);
    const headers = (): Record<string, string> => {
      const h: Record<string, string> = { Accept: accept.join(', ') };
      const t = this.tokens.get(scope);
      if (t) h.Authorization = t;
      return h;
    };
    const origin = new URL(url).origin;
    let r = await this.follow(url, { headers: headers() }, origin);
    if (r.status === 401) {
      const ch = parseChallenge(r.headers.get('www-authenticate') ?? '');
      void r.body?.cancel();
      if (ch.scheme === 'bearer') this.tokens.set(scope, `Bearer ${await this.token(ch.params, scope)}`);
      else if (ch.scheme === 'basic' && this.creds())
        this.tokens.set(scope, `Basic ${Buffer.from(this.creds()!).toString('base64')}`);
      else
        throw new NsboxError(
          `access denied to ${what}: ${this.registry} wants credentials (docker login, or $REGISTRY_AUTH_FILE)`,
          { step: 'pull' },
        );
      r = await this.follow(url, { headers: headers() }, origin);
    }
    if (r.ok) return r;
    void r.body?.cancel();
    if (r.status === 401 || r.status === 403)
      throw new NsboxError(`access denied to ${what} (check the name, or log in)`, {
        step: 'pull',
        code: String(r.status),
      });
    if (r.status === 404) throw new NsboxError(`image not found: ${what}`, { step: 'pull', code: '404' });
    if (r.status === 429) {
      const after = r.headers.get('retry-after');
      const when = after ? (/^\d+$/.test(after) ? `${after} seconds` : after) : 'a while';
      throw new NsboxError(`rate limited by ${this.registry}, retry after ${when}`, { step: 'pull', code: '429' });
    }
    throw new NsboxError(`registry ${this.registry} answered ${r.status} ${r.statusText} for ${what}`, {
      step: 'pull',
      code: String(r.status),
    });
  }

  /** The body of a response, at most `max` bytes. */
  static async bytes(r: Response, max: number, what: string): Promise<Buffer> {
    const len = Number(r.headers.get('content-length') ?? 0);
    if (len > max) throw new NsboxError(`${what} is too large (${len} bytes)`, { step: 'pull' });
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of r.body as unknown as AsyncIterable<Uint8Array>) {
      n += c.length;
      if (n > max) throw new NsboxError(`${what} is too large (over ${max} bytes)`, { step: 'pull' });
      chunks.push(Buffer.from(c));
    }
    return Buffer.concat(chunks);
  }

  /** A response body as a Node stream. */
  static stream(r: Response): Readable {
    return Readable.fromWeb(r.body as never);
  }
}
