import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { chainIds, sha256, Store, storageRoot } from '../../src/images/store.js';

const root = mkdtempSync('/tmp/nsbox-store-test-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the image store', () => {
  it('lives in NSBOX_STORAGE_DIR, /var/lib/nsbox for root, XDG_DATA_HOME otherwise', () => {
    const old = process.env.NSBOX_STORAGE_DIR;
    process.env.NSBOX_STORAGE_DIR = '/x/y/';
    expect(storageRoot()).toBe('/x/y');
    delete process.env.NSBOX_STORAGE_DIR;
    expect(storageRoot()).toBe(process.getuid!() === 0 ? '/var/lib/nsbox' : `${process.env.XDG_DATA_HOME}/nsbox`);
    process.env.NSBOX_STORAGE_DIR = 'relative';
    expect(() => storageRoot()).toThrow(/absolute/);
    if (old === undefined) delete process.env.NSBOX_STORAGE_DIR;
    else process.env.NSBOX_STORAGE_DIR = old;
  });

  it('stores blobs by verified digest, and computes chain ids as the OCI spec does', () => {
    const s = new Store(`${root}/a`).init();
    const data = Buffer.from('{"config":1}');
    s.putBlob(sha256(data), data);
    expect(s.readBlob(sha256(data)).toString()).toBe('{"config":1}');
    expect(() => s.putBlob(sha256('other'), data, 'config')).toThrow(/config sha256:\w+ does not match its digest/);
    const d = [sha256('a'), sha256('b')];
    expect(chainIds(d)).toEqual([d[0], sha256(`${d[0]} ${d[1]}`)]);
  });

  it('unpacks a layer once when two pulls want it at the same time, and a failed unpack leaves nothing', async () => {
    const s = new Store(`${root}/b`).init();
    const id = sha256('layer');
    let runs = 0;
    const unpack = async (dir: string) => {
      runs++;
      await new Promise((r) => setTimeout(r, 100));
      writeFileSync(`${dir}/f`, 'x');
      return { diffId: id, size: 1 };
    };
    await Promise.all([s.ensureLayer(id, unpack), s.ensureLayer(id, unpack)]);
    expect(runs).toBe(1);
    expect(readFileSync(`${s.layerLink(id)}/f`, 'utf8')).toBe('x');
    const bad = sha256('bad');
    await expect(
      s.ensureLayer(bad, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(existsSync(s.layerDir(bad))).toBe(false);
    expect(readdirSync(`${s.root}/tmp`)).toEqual([]);
  });

  it('moves names between images atomically, finds by name, id and prefix, and prunes unused layers', async () => {
    const s = new Store(`${root}/c`).init();
    const l1 = sha256('l1');
    await s.ensureLayer(l1, async () => ({ diffId: l1, size: 5 }));
    const a = { id: sha256('a'), layers: [l1], diffIds: [l1], size: 5 };
    const b = { id: sha256('b'), layers: [], diffIds: [], size: 0 };
    s.addImage(a, ['docker.io/library/bb:1']);
    s.addImage(b, ['docker.io/library/bb:1', 'localhost/x:2']);
    expect(s.find('bb:1')?.id).toBe(b.id);
    expect(s.find('docker.io/library/bb:1')?.id).toBe(b.id);
    expect(s.find(a.id.slice(7, 19))?.id).toBe(a.id);
    expect(s.find(a.id)?.id).toBe(a.id);
    expect(s.find('bb:2')).toBe(null);
    expect(s.images().find((i) => i.id === a.id)?.names).toEqual([]);
    expect(s.prune()).toEqual([]);
    s.removeImage(a.id);
    expect(s.prune()).toEqual([l1]);
    expect(existsSync(s.layerLink(l1))).toBe(false);
  });

  it('removes what a dead process left in tmp/', () => {
    mkdirSync(`${root}/d/tmp/999999999-abc`, { recursive: true });
    writeFileSync(`${root}/d/tmp/999999999-abc/half`, 'x');
    mkdirSync(`${root}/d/tmp/${process.pid}-mine`);
    new Store(`${root}/d`).init();
    expect(readdirSync(`${root}/d/tmp`)).toEqual([`${process.pid}-mine`]);
  });
});
