// nsbox pull against a registry of our own on loopback (docker-registry), with a Node front that
// asks for Bearer tokens, redirects blobs to another origin, and misbehaves on purpose.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsbox } from '../helpers.js';
import { pull } from '../../src/images/pull.js';
import { Store } from '../../src/images/store.js';
import { makeLayout, skopeo } from './fixtures.js';
import { proxy, serve, startRegistry, type Registry } from './registry.js';
import { tarball } from './tarball.js';

const work = mkdtempSync('/tmp/nsbox-pull-test-');
let reg: Registry;
const servers: Server[] = [];
let front = 0,
  blobs = 0;
let leaked = 0,
  tokens = 0;
let layerDigests: string[] = [];
const authFile = `${work}/auth.json`;
let storeN = 0;
const newStore = () => `${work}/store${storeN++}`;
const cli = (args: string[], store: string, extra: NodeJS.ProcessEnv = {}) =>
  nsbox(args, { env: { ...process.env, NSBOX_STORAGE_DIR: store, REGISTRY_AUTH_FILE: authFile, ...extra } });

beforeAll(async () => {
  reg = await startRegistry(`${work}/registry`);
  makeLayout(`${work}/oci`);
  skopeo(['copy', '--dest-tls-verify=false', `oci:${work}/oci:bb`, `docker://${reg.host}/library/bb:1`]);
  skopeo(['copy', '--dest-tls-verify=false', `oci:${work}/oci:bb`, `docker://${reg.host}/library/multi:base`]);
  const man = await (
    await fetch(`http://${reg.host}/v2/library/bb/manifests/1`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
  ).text();
  layerDigests = JSON.parse(man).layers.map((l: { digest: string }) => l.digest);
  const digest = `sha256:${createHash('sha256').update(man).digest('hex')}`;
  // A multi-platform index: amd64 and arm64 entries, an attestation and an unknown/unknown entry.
  const entry = (platform: object, annotations?: object) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest,
    size: man.length,
    platform,
    ...(annotations ? { annotations } : {}),
  });
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      entry({ os: 'unknown', architecture: 'unknown' }, { 'vnd.docker.reference.type': 'attestation-manifest' }),
      entry({ os: 'linux', architecture: arch }),
      entry({ os: 'linux', architecture: 'riscv64' }),
    ],
  };
  const put = await fetch(`http://${reg.host}/v2/library/multi/manifests/1`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
    body: JSON.stringify(index),
  });
  expect(put.status).toBe(201);
  writeFileSync(authFile, JSON.stringify({ auths: { '127.0.0.1': { auth: 'eA==' } } }));

  // Blobs are redirected here, to another origin: it must never see the Authorization header.
  const b = await serve((req, res) => {
    if (req.headers.authorization) leaked++;
    if (req.url!.includes('/library/slow/') && layerDigests.some((d) => req.url!.endsWith(d))) {
      // Half of a layer, then nothing: a pull that hangs here is killed by the test.
      res.writeHead(200, { 'Content-Length': '1000000' });
      res.write(Buffer.alloc(1000));
      return;
    }
    const evil = req.url!.includes('/library/evil/');
    if (evil && req.url!.endsWith(layerDigests[1])) {
      res.end(gzipSync(tarball([{ path: 'etc/motd', data: 'not what the manifest said\n' }])));
      return;
    }
    proxy(req, res, reg.port, req.url!.replace(/\/library\/(evil|slow)\//, '/library/bb/'));
  });
  blobs = b.port;
  const f = await serve((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/token') {
      tokens++;
      const want = `Basic ${Buffer.from('tester:secret').toString('base64')}`;
      if (req.headers.authorization !== want) return void res.writeHead(401).end();
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: 'tok' }));
    }
    if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
    if (url.pathname.startsWith('/v2/library/limited/')) return void res.writeHead(429, { 'Retry-After': '30' }).end();
    if (req.headers.authorization !== 'Bearer tok') {
      const repo = url.pathname.split('/').slice(2, 4).join('/');
      res.writeHead(401, {
        'WWW-Authenticate': `Bearer realm="http://127.0.0.1:${f.port}/token",service="mock",scope="repository:${repo}:pull"`,
      });
      return void res.end();
    }
    if (url.pathname.startsWith('/v2/library/old/manifests/')) {
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
      return void res.end(JSON.stringify({ schemaVersion: 1, name: 'library/old', fsLayers: [] }));
    }
    if (url.pathname.includes('/blobs/')) {
      res.writeHead(307, { Location: `http://localhost:${blobs}${url.pathname}` });
      return void res.end();
    }
    proxy(req, res, reg.port, url.pathname.replace(/\/library\/(evil|slow)\//, '/library/bb/'));
  });
  front = f.port;
  servers.push(b.server, f.server);
}, 120_000);

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections(); // the slow layer's, which never ends
    await new Promise((r) => s.close(r));
  }
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('nsbox pull', () => {
  it('pulls from a loopback registry over plain HTTP, with plain progress lines when not on a terminal', async () => {
    const store = newStore();
    const r = await cli(['pull', `${reg.host}/library/bb:1`], store);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => /^[0-9a-f]{12}: downloading \d/.test(l))).toHaveLength(3);
    expect(lines.filter((l) => /^[0-9a-f]{12}: done$/.test(l))).toHaveLength(3);
    expect(lines.at(-2)).toMatch(/^Digest: sha256:[0-9a-f]{64}$/);
    expect(lines.at(-1)).toBe(`${reg.host}/library/bb:1`);
    expect(readdirSync(`${store}/layers`)).toHaveLength(3);
    const [img] = JSON.parse((await cli(['image', 'inspect', `${reg.host}/library/bb:1`], store)).stdout);
    expect(img.digests).toEqual([`${reg.host}/library/bb@${lines.at(-2)!.slice(8)}`]);
    expect(img.config.config.Env).toContain('FOO=bar');
    // Again: every layer is already there; -q prints only the name.
    const again = await cli(['pull', `${reg.host}/library/bb:1`], store);
    expect(again.stdout.split('\n').filter((l) => l.endsWith('already exists'))).toHaveLength(3);
    expect((await cli(['pull', '-q', `${reg.host}/library/bb:1`], store)).stdout).toBe(`${reg.host}/library/bb:1\n`);
    expect(readdirSync(`${store}/tmp`)).toEqual([]);
  });

  it('gets a Bearer token with Basic credentials, follows blob redirects without leaking Authorization', async () => {
    writeFileSync(
      authFile,
      JSON.stringify({ auths: { [`127.0.0.1:${front}`]: { auth: Buffer.from('tester:secret').toString('base64') } } }),
    );
    const store = newStore();
    tokens = 0;
    const r = await cli(['pull', '-q', `127.0.0.1:${front}/library/bb:1`], store);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(tokens).toBeGreaterThan(0);
    expect(leaked).toBe(0);
    expect(readdirSync(`${store}/layers`)).toHaveLength(3);
  });

  it("picks this machine's platform from an index, skipping attestations; --platform chooses", async () => {
    const store = newStore();
    const r = await cli(['pull', '-q', `${reg.host}/library/multi:1`], store);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const bad = await cli(['pull', '--platform', 'linux/s390x', `${reg.host}/library/multi:1`], store);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(
      new RegExp(
        '^nsbox: .*multi:1 has no image for linux/s390x ' +
          '\\(it has: linux/(amd64|arm64), linux/riscv64; see --platform\\)\n$',
      ),
    );
  });

  it('says what went wrong in one line, and leaves nothing half-written', async () => {
    writeFileSync(
      authFile,
      JSON.stringify({ auths: { [`127.0.0.1:${front}`]: { auth: Buffer.from('tester:secret').toString('base64') } } }),
    );
    const store = newStore();
    const cases: [string[], RegExp][] = [
      [['pull', `${reg.host}/library/bb:nope`], /^nsbox: image not found: 127\.0\.0\.1:\d+\/library\/bb:nope\n$/],
      [['pull', `${reg.host}/library/bb@sha256:${'0'.repeat(64)}`], /^nsbox: image not found: /],
      [
        ['pull', `127.0.0.1:${front}/library/limited:1`],
        /^nsbox: rate limited by 127\.0\.0\.1:\d+, retry after 30 seconds\n$/,
      ],
      [
        ['pull', `127.0.0.1:${front}/library/old:1`],
        /^nsbox: .*old:1 has a Docker schema 1 manifest, which nsbox does not read/,
      ],
      [
        ['pull', `127.0.0.1:${front}/library/evil:1`],
        /^nsbox: .*layer sha256:[0-9a-f]{64}.* (does not match its digest|unpacks to|is longer than its manifest says)/,
      ],
      [
        ['pull', `127.0.0.1:${await (await import('./registry.js')).freePort()}/library/bb:1`],
        /^nsbox: cannot reach registry 127\.0\.0\.1:\d+: connection refused\n$/,
      ],
      [['pull', 'Bad/Name'], /^nsbox: invalid reference format: "Bad\/Name": repository name must be lowercase/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(args, store);
      expect(r.code, args.join(' ')).toBe(125);
      expect(r.stderr).toMatch(msg);
    }
    writeFileSync(
      authFile,
      JSON.stringify({ auths: { [`127.0.0.1:${front}`]: { auth: Buffer.from('tester:wrong').toString('base64') } } }),
    );
    const denied = await cli(['pull', `127.0.0.1:${front}/library/bb:1`], store);
    expect(denied.stderr).toMatch(
      /^nsbox: access denied by 127\.0\.0\.1:\d+: the token server refused the credentials\n$/,
    );
    // The evil pull wrote good layers (shared, reusable) but no bad layer, no image, nothing in tmp/.
    expect(existsSync(`${store}/images.json`)).toBe(false);
    expect(readdirSync(`${store}/layers`).some((l) => layerDigests.includes(`sha256:${l}`))).toBe(false);
    expect(readdirSync(`${store}/tmp`)).toEqual([]);
  });

  it('does the work once for two pulls at the same time; a pull killed midway leaves the store usable', async () => {
    writeFileSync(
      authFile,
      JSON.stringify({ auths: { [`127.0.0.1:${front}`]: { auth: Buffer.from('tester:secret').toString('base64') } } }),
    );
    const store = newStore();
    const [a, b] = await Promise.all([
      cli(['pull', '-q', `${reg.host}/library/bb:1`], store),
      cli(['pull', '-q', `${reg.host}/library/bb:1`], store),
    ]);
    expect([a.code, b.code, a.stderr + b.stderr]).toEqual([0, 0, '']);
    expect(readdirSync(`${store}/layers`).filter((l) => !l.endsWith('.lock'))).toHaveLength(3);
    const fresh = newStore();
    const { spawn } = await import('node:child_process');
    const p = spawn(
      process.execPath,
      [require.resolve('../../dist/run.js'), 'pull', `127.0.0.1:${front}/library/slow:1`],
      {
        env: { ...process.env, NSBOX_STORAGE_DIR: fresh, REGISTRY_AUTH_FILE: authFile },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    await new Promise<void>((res) =>
      p.stdout!.on('data', (d) => {
        out += d;
        if (/downloading/.test(out)) res();
      }),
    );
    await new Promise((r) => setTimeout(r, 300)); // in the middle of the layers
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    expect(readdirSync(`${fresh}/tmp`).length).toBeGreaterThan(0); // its work in progress, left behind
    const again = await cli(['pull', '-q', `${reg.host}/library/bb:1`], fresh);
    expect([again.code, again.stderr]).toEqual([0, '']);
    expect(readdirSync(`${fresh}/tmp`)).toEqual([]);
    expect((await cli(['run', '--rm', `${reg.host}/library/bb:1`, 'cat', '/etc/motd'], fresh)).stdout).toBe(
      'hello from layer 2\n',
    );
  });

  it('is a library call too, with progress events', async () => {
    const events: string[] = [];
    const store = new Store(newStore());
    const img = await pull(`${reg.host}/library/bb:1`, {
      store,
      onProgress: (p) => events.push(`${p.layer}:${p.state}`),
    });
    expect(img.names).toEqual([`${reg.host}/library/bb:1`]);
    for (const i of [0, 1, 2]) expect(events).toContain(`${i}:done`);
    expect(JSON.parse(readFileSync(store.blobPath(img.id), 'utf8')).config.Cmd).toEqual(['/bin/sh']);
  });
});
