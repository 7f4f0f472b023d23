// nsbox import / images / rmi / image inspect / image prune, through the CLI, on archives made offline.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsbox, ROOTFS } from '../helpers.js';
import { makeLayout, skopeo } from './fixtures.js';

const work = mkdtempSync('/tmp/nsbox-import-test-');
const store = `${work}/store`;
const env = { ...process.env, NSBOX_STORAGE_DIR: store };
const cli = (args: string[], input?: string) => nsbox(args, { env, input });
const layers = () => readdirSync(`${store}/layers`).filter((e) => !e.endsWith('.lock'));

beforeAll(() => {
  makeLayout(`${work}/oci`);
  skopeo(['copy', `oci:${work}/oci:bb`, `oci-archive:${work}/bb-oci.tar:bb:1`]);
  skopeo(['copy', `oci:${work}/oci:bb`, `docker-archive:${work}/bb-docker.tar:localhost/bb:docker`]);
  execFileSync('tar', ['-C', ROOTFS, '-czf', `${work}/rootfs.tgz`, '.']);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('nsbox import', () => {
  it('reads an oci-archive: three layers, the whiteout as an overlay whiteout, the config kept', async () => {
    const r = await cli(['import', `${work}/bb-oci.tar`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Loaded image: docker.io/library/bb:1\n');
    expect(layers()).toHaveLength(3);
    const [img] = JSON.parse((await cli(['image', 'inspect', 'bb:1'])).stdout);
    expect(img.config.config.Env).toContain('FOO=bar');
    expect(img.config.config.Cmd).toEqual(['/bin/sh']);
    expect(img.layers).toHaveLength(3);
    const wh = lstatSync(`${store}/layers/${img.layers[2].slice(7)}/diff/etc/group`);
    expect(wh.isCharacterDevice() && wh.rdev).toBe(0);
    expect(readFileSync(`${store}/layers/${img.layers[1].slice(7)}/diff/etc/motd`, 'utf8')).toBe(
      'hello from layer 2\n',
    );
    expect(readdirSync(`${store}/tmp`)).toEqual([]);
  });

  it('reads a docker save archive into the same image, sharing its layers', async () => {
    const r = await cli(['import', `${work}/bb-docker.tar`]);
    expect(r.stdout).toBe('Loaded image: localhost/bb:docker\n');
    expect(layers()).toHaveLength(3);
    const list = JSON.parse((await cli(['images', '--format', 'json'])).stdout);
    expect(list).toHaveLength(1);
    expect(list[0].names.sort()).toEqual(['docker.io/library/bb:1', 'localhost/bb:docker']);
  });

  it('reads a gzipped root-filesystem tar from stdin, named by --name', async () => {
    const r = await nsbox(['import', '--name', 'plain:v1', '-'], { env, input: undefined, ...{} });
    expect(r.code).toBe(125); // nothing on stdin: not an archive
    const cat = execFileSync(
      process.execPath,
      [require.resolve('../../dist/run.js'), 'import', '--name', 'plain:v1', '-'],
      { env, input: readFileSync(`${work}/rootfs.tgz`) },
    ).toString();
    expect(cat).toBe('Loaded image: docker.io/library/plain:v1\n');
    const q = (await cli(['images', '-q'])).stdout.trim().split('\n');
    expect(q).toHaveLength(2);
    const table = (await cli(['images'])).stdout;
    expect(table).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/);
    expect(table).toMatch(/\nplain\s+v1\s+[0-9a-f]{12}\s+\d+ seconds? ago\s+\d\.\d\dMB\n/);
    expect(table).toMatch(/\nlocalhost\/bb\s+docker\s+/);
  });

  it('refuses a tampered archive and leaves nothing of it in the store', async () => {
    const bad = `${work}/bad`;
    cpSync(`${work}/oci`, bad, { recursive: true });
    const manifest = JSON.parse(readFileSync(`${bad}/index.json`, 'utf8')).manifests[0].digest.slice(7);
    const m = JSON.parse(readFileSync(`${bad}/blobs/sha256/${manifest}`, 'utf8'));
    const motd = `${bad}/blobs/sha256/${m.layers[1].digest.slice(7)}`;
    const bytes = readFileSync(motd);
    bytes[bytes.length - 20] ^= 1;
    writeFileSync(motd, bytes);
    // An OCI layout as a tar is an oci-archive (skopeo would refuse to copy the tampered blob).
    execFileSync('tar', ['-C', bad, '-cf', `${work}/bad.tar`, '.']);
    // A store of its own: here, layers already present are (rightly) never read again.
    const fresh = `${work}/store2`;
    const r = await nsbox(['import', '--name', 'bad:1', `${work}/bad.tar`], {
      env: { ...env, NSBOX_STORAGE_DIR: fresh },
    });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(
      /^nsbox: (image bad:1: )?layer sha256:[0-9a-f]{64}(: bad gzip data| does not match its digest)/,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // Good layers (unpacked side by side) stay for a later pull to reuse; the bad one and the image do not.
    expect(readdirSync(`${fresh}/layers`).length).toBeLessThan(3);
    expect(readdirSync(`${fresh}/tmp`)).toEqual([]);
    expect(existsSync(`${fresh}/images.json`)).toBe(false);
  });

  it('gives one-line errors for a bad name, a missing file and a bad platform', async () => {
    for (const [args, msg] of [
      [
        ['import', '--name', 'Bad:1', `${work}/bb-oci.tar`],
        /^nsbox: invalid reference format: "Bad:1": repository name must be lowercase/,
      ],
      [['import', `${work}/missing.tar`], /^nsbox: cannot read .*missing\.tar: no such file/],
      [['import', '--platform', 'linux', `${work}/bb-oci.tar`], /^nsbox: invalid platform: linux/],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('nsbox rmi and image prune', () => {
  it('untags a name while others remain, then deletes the image and the layers no one else uses', async () => {
    let r = await cli(['rmi', 'localhost/bb:docker']);
    expect(r.stdout).toBe('Untagged: localhost/bb:docker\n');
    r = await cli(['rmi', 'nothere:1']);
    expect([r.code, r.stderr]).toEqual([1, 'nsbox: no such image: nothere:1\n']);
    r = await cli(['rmi', 'bb:1', 'plain:v1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        '^Untagged: docker.io/library/bb:1\nDeleted: sha256:[0-9a-f]{64}\n' +
          'Untagged: docker.io/library/plain:v1\nDeleted: sha256:',
      ),
    );
    expect(layers()).toEqual([]);
    expect(readdirSync(`${store}/l`)).toEqual([]);
    expect((await cli(['images', '-q'])).stdout).toBe('');
    expect((await cli(['image', 'prune'])).stdout).toBe('0 layers removed\n');
    expect(existsSync(`${store}/images.json`)).toBe(true);
  });
});
