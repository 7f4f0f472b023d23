// Applying layers: the normal cases, then hostile archives, each refused or contained.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  openSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer } from '../../src/images/layer.js';
import { fsops } from '../../src/native.js';
import { tarball } from './tarball.js';

const base = mkdtempSync('/tmp/nsbox-layer-test-');
const outside = `${base}/outside`;
let dir = '';
let n = 0;

beforeEach(() => {
  rmSync(outside, { recursive: true, force: true });
  mkdirSync(outside);
  writeFileSync(`${outside}/file`, 'host\n');
  chmodSync(`${outside}/file`, 0o644);
  dir = `${base}/layer${n++}`;
  mkdirSync(dir);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const apply = (tar: Buffer, o = {}) => applyLayer(Readable.from([tar]), dir, o);
const outsideUntouched = () => {
  expect(readFileSync(`${outside}/file`, 'utf8')).toBe('host\n');
  expect(statSync(`${outside}/file`).mode & 0o7777).toBe(0o644);
  expect(readFileSync('/etc/passwd', 'utf8')).toContain('root:');
  expect(existsSync(`${outside}/pwned`)).toBe(false);
};
const errorOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

describe('applying a layer', () => {
  it('makes files, directories, links and nodes with owners, modes and times; diff_id is the tar digest', async () => {
    const tar = tarball([
      { path: './', type: 'Directory', mode: 0o755 },
      { path: 'bin/', type: 'Directory' },
      { path: 'bin/su', data: '#!/bin/sh\n', mode: 0o4755, uid: 0, gid: 0 },
      { path: 'home/user/notes', data: 'hi', uid: 1000, gid: 1000, mode: 0o600 },
      { path: 'bin/sh', type: 'SymbolicLink', linkpath: 'busybox' },
      { path: 'bin/su2', type: 'Link', linkpath: 'bin/su' },
      { path: 'run/fifo', type: 'FIFO', mode: 0o640 },
      { path: 'dev/null', type: 'CharacterDevice', devmaj: 1, devmin: 3, mode: 0o666 },
      { path: 'opt/', type: 'Directory', mode: 0o750, mtime: new Date(1_500_000_000_000) },
      { path: 'opt/x', data: 'x' },
    ]);
    const r = await apply(gzipSync(tar));
    expect(r.diffId).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    expect(r.entries).toBe(10);
    expect(statSync(`${dir}/bin/su`).mode & 0o7777).toBe(0o4755);
    const notes = statSync(`${dir}/home/user/notes`);
    expect([notes.uid, notes.gid, notes.mode & 0o777]).toEqual([1000, 1000, 0o600]);
    expect(readlinkSync(`${dir}/bin/sh`)).toBe('busybox');
    expect(statSync(`${dir}/bin/su2`).ino).toBe(statSync(`${dir}/bin/su`).ino);
    expect(lstatSync(`${dir}/run/fifo`).isFIFO()).toBe(true);
    expect(statSync(`${dir}/run/fifo`).mode & 0o777).toBe(0o640);
    const dev = lstatSync(`${dir}/dev/null`);
    expect(dev.isCharacterDevice() && dev.rdev).toBe(0x103);
    // Directory times are set last, after opt/x was made in it.
    expect(statSync(`${dir}/opt`).mtimeMs).toBe(1_500_000_000_000);
    expect(statSync(`${dir}/opt`).mode & 0o777).toBe(0o750);
  });

  it('turns whiteouts into overlay whiteouts, but never of what the same layer wrote', async () => {
    await apply(
      tarball([
        { path: 'etc/keep', data: 'mine' },
        { path: 'etc/.wh.keep' },
        { path: 'etc/.wh.gone' },
        { path: 'var/.wh..wh..opq' },
      ]),
    );
    expect(readFileSync(`${dir}/etc/keep`, 'utf8')).toBe('mine');
    const wh = lstatSync(`${dir}/etc/gone`);
    expect(wh.isCharacterDevice() && wh.rdev).toBe(0);
    expect(existsSync(`${dir}/etc/.wh.gone`)).toBe(false);
    const fd = openSync(`${dir}/var`, 'r');
    expect(fsops.fgetxattr(fd, 'trusted.overlay.opaque')?.toString()).toBe('y');
    closeSync(fd);
  });

  it('applies pax xattrs (binary values, after chown) and skips overlay markers with one warning', async () => {
    // security.capability v2: cap_net_raw (13) and cap_setuid (7, a byte of 0x80) permitted, effective.
    const cap = Buffer.from([1, 0, 0, 2, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const odd = Buffer.from('a=b\nc\0d\xff', 'latin1');
    const warnings: string[] = [];
    const big = Buffer.alloc(300_000, 7); // spans many chunks: the xattrs after it still match their entry
    const tar = tarball([
      { path: 'bin/', type: 'Directory', xattrs: { 'user.dir': 'd' } },
      { path: 'bin/big', data: big },
      { path: 'bin/ping', data: 'ELF', mode: 0o755, uid: 1000, gid: 1000, xattrs: { 'security.capability': cap } },
      { path: 'bin/odd', data: 'x', xattrs: { 'user.odd': odd, 'trusted.overlay.opaque': 'y' } },
      { path: 'bin/link', type: 'SymbolicLink', linkpath: 'odd', xattrs: { 'trusted.link': 'on-the-link' } },
    ]);
    await apply(gzipSync(tar), { warn: (m: string) => warnings.push(m) });
    const get = (p: string, name: string) => {
      const fd = openSync(`${dir}/${p}`, 'r');
      try {
        return fsops.fgetxattr(fd, name);
      } finally {
        closeSync(fd);
      }
    };
    expect(get('bin/ping', 'security.capability')).toEqual(cap);
    expect(statSync(`${dir}/bin/ping`).uid).toBe(1000);
    expect(get('bin/odd', 'user.odd')).toEqual(odd);
    expect(get('bin/odd', 'trusted.overlay.opaque')).toBeNull();
    expect(get('bin', 'user.dir')?.toString()).toBe('d');
    expect(get('bin/big', 'user.dir')).toBeNull();
    expect(get('bin/odd', 'trusted.link')).toBeNull(); // set on the symlink itself, not through it
    expect(warnings).toEqual([
      expect.stringMatching(
        /1 extended attribute\(s\) not applied \(overlay's own .*trusted.overlay.opaque on bin\/odd/,
      ),
    ]);
  });

  it('refuses ../ that climbs out of the layer', async () => {
    expect(await errorOf(apply(tarball([{ path: '../../outside/pwned', data: 'x' }])))).toMatch(
      /escapes the layer: \.\.\/\.\.\/outside\/pwned/,
    );
    expect(await errorOf(apply(tarball([{ path: 'a/../../pwned', data: 'x' }])))).toMatch(/escapes the layer/);
    outsideUntouched();
  });

  it('keeps a write through an absolute symlink inside the layer', async () => {
    await apply(
      tarball([
        { path: 'evil', type: 'SymbolicLink', linkpath: outside },
        { path: 'evil/pwned', data: 'x' },
        { path: 'up', type: 'SymbolicLink', linkpath: '../../../../../..' },
        { path: `up${outside}/file`, data: 'x' },
      ]),
    );
    outsideUntouched();
    expect(readFileSync(`${dir}${outside}/pwned`, 'utf8')).toBe('x');
    expect(readFileSync(`${dir}${outside}/file`, 'utf8')).toBe('x');
    expect(lstatSync(`${dir}/evil`).isSymbolicLink()).toBe(true);
  });

  it('replaces a symlink by the entry of the same name rather than writing or chmodding through it', async () => {
    await apply(
      tarball([
        { path: 'f', type: 'SymbolicLink', linkpath: `${outside}/file` },
        { path: 'f', data: 'mine', mode: 0o777 },
        { path: 'd', type: 'SymbolicLink', linkpath: outside },
        { path: 'd', type: 'Directory', mode: 0o777 },
      ]),
    );
    outsideUntouched();
    expect(readFileSync(`${dir}/f`, 'utf8')).toBe('mine');
    expect(lstatSync(`${dir}/d`).isDirectory()).toBe(true);
  });

  it('resolves hard-link targets inside the layer', async () => {
    // /etc/passwd of the host is not in the layer: nothing to link to.
    expect(await errorOf(apply(tarball([{ path: 'passwd', type: 'Link', linkpath: '/etc/passwd' }])))).toMatch(
      /ENOENT/,
    );
    expect(await errorOf(apply(tarball([{ path: 'p', type: 'Link', linkpath: '../../../etc/passwd' }])))).toMatch(
      /escapes the layer/,
    );
    // Through a symlink to the host's directory: resolved in the layer, where it does not exist.
    expect(
      await errorOf(
        apply(
          tarball([
            { path: 'h', type: 'SymbolicLink', linkpath: outside },
            { path: 'p', type: 'Link', linkpath: 'h/file' },
          ]),
        ),
      ),
    ).toMatch(/ENOENT/);
    // A hard link to a symlink links the symlink itself.
    await apply(
      tarball([
        { path: 's', type: 'SymbolicLink', linkpath: `${outside}/file` },
        { path: 'hl', type: 'Link', linkpath: 's' },
        { path: 'hl', data: 'x' },
      ]),
    );
    outsideUntouched();
  });

  it('never lets the root entry change type', async () => {
    expect(await errorOf(apply(tarball([{ path: './', type: 'SymbolicLink', linkpath: outside }])))).toMatch(
      /root entry .* not a directory/,
    );
    expect(await errorOf(apply(tarball([{ path: '.', type: 'File', data: 'x' }])))).toMatch(/root entry/);
    expect(lstatSync(dir).isDirectory()).toBe(true);
    outsideUntouched();
  });

  it('refuses an archive bomb: too many bytes or too many entries', async () => {
    // 64 MiB of zeros declared in one entry: ~64 KiB of gzip.
    const bomb = gzipSync(tarball([{ path: 'zeros', data: Buffer.alloc(64 << 20) }]));
    expect(bomb.length).toBeLessThan(1 << 20);
    expect(await errorOf(apply(bomb, { maxBytes: 8 << 20 }))).toMatch(
      /more than 8388608 bytes \(refused as an archive bomb\)/,
    );
    const many = tarball(Array.from({ length: 50 }, (_, i) => ({ path: `f${i}`, data: '' })));
    expect(await errorOf(apply(many, { maxEntries: 20 }))).toMatch(/more than 20 entries/);
  });

  it('refuses what is not a tar', async () => {
    expect(await errorOf(apply(Buffer.from('hello, this is not a tar archive'.repeat(40))))).toMatch(
      /not a valid tar archive|invalid/i,
    );
  });

  it('inflates zstd (frames of the zstd tool, a skippable frame between), its diff_id over the tar', async () => {
    const big = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i}\n`).join(''));
    const tar = tarball([
      { path: 'etc/big', data: big },
      { path: 'etc/cap', data: 'x', xattrs: { 'user.k': 'v' } },
    ]);
    const half = tar.length / 2;
    const zstd = (b: Buffer) => execFileSync('zstd', ['-q', '-c', '--check'], { input: b });
    const skippable = Buffer.from([0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const z = Buffer.concat([zstd(tar.subarray(0, half)), skippable, zstd(tar.subarray(half))]);
    const r = await applyLayer(Readable.from([z.subarray(0, 5), z.subarray(5, 1000), z.subarray(1000)]), dir);
    expect(r.diffId).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    expect(readFileSync(`${dir}/etc/big`)).toEqual(big);
    const fd = openSync(`${dir}/etc/cap`, 'r');
    expect(fsops.fgetxattr(fd, 'user.k')?.toString()).toBe('v');
    closeSync(fd);
  });

  it('refuses a zstd frame with a window above 128 MiB (memory) before inflating it, and truncated zstd', async () => {
    // Frame header: no single segment, window descriptor 2^(10+18) = 256 MiB; then one raw last block.
    const huge = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 18 << 3, 0x09, 0, 0, 0]);
    expect(await errorOf(apply(huge))).toMatch(/a zstd frame wants a 256 MiB window \(at most 128 MiB\)/);
    const z = execFileSync('zstd', ['-q', '-c'], { input: tarball([{ path: 'f', data: 'x'.repeat(5000) }]) });
    expect(await errorOf(apply(z.subarray(0, z.length - 3)))).toMatch(/zstd/);
    expect(await errorOf(apply(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])))).toMatch(/zstd/);
  });
});
