// Containers from images: the config applied, a copy-on-write root per container made inside its
// mount namespace, removed with it, and the image left as it was.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostMounts, nsbox, ROOTFS } from '../helpers.js';
import { makeLayout, sha256, skopeo, writeOciLayout } from './fixtures.js';
import {
  cliCopy,
  createUser,
  removeUser,
  restoreSubIds,
  saveSubIds,
  scratch,
  setSubIds,
  type TestUser,
} from '../userns/setup.js';
import { collect } from '../helpers.js';
import { fsops, idmap } from '../../src/native.js';
import { tarball } from './tarball.js';

const work = mkdtempSync('/tmp/nsbox-run-test-');
const store = `${work}/store`;
const env = { ...process.env, NSBOX_STORAGE_DIR: store };
const cli = (args: string[], input?: string) => nsbox(args, { env, input });
const ok = async (args: string[], input?: string) => {
  const r = await cli(args, input);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code, args.join(' ')).toBe(0);
  return r.stdout;
};
/** Every file of every layer with its mode, size and mtime: the image as it is on disk. */
const layersPrint = () =>
  execFileSync('find', [`${store}/layers`, '-printf', '%p %m %s %T@ %u\n'], { encoding: 'utf8' })
    .split('\n')
    .sort()
    .join('\n');
/** Whether this kernel can idmap a mount of the store's filesystem (as root's --userns with an image needs). */
function canIdmap(): boolean {
  try {
    const ns = idmap.usernsFd('0 300000 65536\n', '0 300000 65536\n');
    try {
      closeSync(idmap.idmappedTree(work, ns, 1));
      return true;
    } finally {
      closeSync(ns);
    }
  } catch {
    return false;
  }
}
/** An OCI layout with busybox and then `n` small layers, each adding /l/fI (or these layers), as an archive. */
function manyLayers(n: number, name: string, extra?: Buffer[]): string {
  const dir = `${work}/${name}`;
  const tars = [execFileSync('tar', ['-C', ROOTFS, '-c', '.'], { maxBuffer: 1 << 28 })];
  for (let i = 0; i < n; i++) tars.push(tarball([{ path: `l/f${i}`, data: `${i}\n` }]));
  tars.push(...(extra ?? []));
  const layers = tars.map((data) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    data,
    diffId: sha256(data),
  }));
  writeOciLayout(dir, { layers, cmd: ['/bin/sh'], annotations: { 'org.opencontainers.image.ref.name': `${name}:1` } });
  execFileSync('tar', ['-C', dir, '-cf', `${dir}.tar`, '.']);
  return `${dir}.tar`;
}

beforeAll(async () => {
  const oci = makeLayout(`${work}/oci`);
  execFileSync('umoci', [
    'config',
    '--image',
    `${oci}:bb`,
    '--tag',
    'bbu',
    '--config.user',
    'user',
    '--config.entrypoint',
    '/bin/echo',
    '--config.cmd',
    'hello',
    '--config.workingdir',
    '/work/dir',
    '--config.env',
    'FOO=bar',
  ]);
  execFileSync('umoci', ['config', '--image', `${oci}:bb`, '--tag', 'bbstop', '--config.stopsignal', 'SIGUSR1']);
  skopeo(['copy', `oci:${oci}:bbstop`, `oci-archive:${work}/bbstop.tar:bbstop:1`]);
  skopeo(['copy', `oci:${oci}:bb`, `oci-archive:${work}/bb.tar:bb:1`]);
  skopeo(['copy', `oci:${oci}:bbu`, `oci-archive:${work}/bbu.tar:bbu:1`]);
  await ok(['import', `${work}/bb.tar`]);
  await ok(['import', `${work}/bbu.tar`]);
  await ok(['import', `${work}/bbstop.tar`]);
}, 120_000);
let user: TestUser | undefined;
const subIds = saveSubIds();
const userDir = scratch();
afterAll(() => {
  removeUser(user);
  restoreSubIds(subIds);
  rmSync(userDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('nsbox run IMAGE', () => {
  it('applies Cmd, Env and WorkingDir; the arguments replace Cmd, -e and -w win; whiteouts hide', async () => {
    expect(await ok(['run', 'bb:1'])).toBe(''); // /bin/sh, its stdin empty
    expect(
      await ok(['run', 'bb:1', 'sh', '-c', 'echo $FOO $PWD; cat /etc/motd; test -e /etc/group || echo no group']),
    ).toBe('bar /tmp\nhello from layer 2\nno group\n');
    expect(await ok(['run', '-e', 'FOO=mine', '-w', '/etc', 'bb:1', 'sh', '-c', 'echo $FOO $PWD'])).toBe('mine /etc\n');
  });

  it("applies Entrypoint and User (from the image's /etc/passwd); --entrypoint replaces both it and Cmd", async () => {
    expect(await ok(['run', 'bbu:1'])).toBe('hello\n');
    expect(await ok(['run', 'bbu:1', 'world'])).toBe('world\n');
    expect(await ok(['run', '--entrypoint', 'id', 'bbu:1'])).toMatch(/^uid=1000\(user\) gid=1000/);
    expect(await ok(['run', '--entrypoint', 'pwd', 'bbu:1'])).toBe('/work/dir\n'); // made, as it was missing
    expect(await ok(['run', '-u', '0', '--entrypoint', 'id', 'bbu:1'])).toMatch(/^uid=0\(root\) gid=0/);
  });

  it('gives each container its own copy-on-write root, invisible on the host, gone with the container', async () => {
    const before = layersPrint(),
      mounts = hostMounts();
    const id = (await ok(['run', '-d', '--name', 'tutorial', 'bb:1', 'sleep', '1000'])).trim();
    try {
      expect(await ok(['ps'])).toMatch(new RegExp(`^${id}\\s+tutorial\\s+bb:1\\s+running\\s`, 'm'));
      expect(readdirSync(`${store}/containers`)).toEqual([id]);
      await ok(['exec', 'tutorial', 'sh', '-c', 'echo hi > /tmp/example_file; rm /etc/motd']);
      expect(await ok(['exec', 'tutorial', 'cat', '/tmp/example_file'])).toBe('hi\n');
      const check = 'test -e /tmp/example_file || echo absent; cat /etc/motd';
      const other = await ok(['run', '--rm', 'bb:1', 'sh', '-c', check]);
      expect(other).toBe('absent\nhello from layer 2\n');
      // Nothing of the overlays shows on the host (other mounts may come and go: the host is shared).
      expect(hostMounts().filter((m) => m.startsWith(store) || (!mounts.includes(m) && m.includes('overlay')))).toEqual(
        [],
      );
      const rmi = await cli(['rmi', 'bb:1']);
      expect([rmi.code, rmi.stderr]).toEqual([
        1,
        `nsbox: image bb:1 is used by container ${id}: remove it first, or use rmi -f\n`,
      ]);
    } finally {
      await cli(['rm', '-f', 'tutorial']);
    }
    expect(readdirSync(`${store}/containers`)).toEqual([]);
    expect(layersPrint()).toBe(before);
  });

  it("stops with the image's StopSignal", async () => {
    await ok([
      'run',
      '-d',
      '--name',
      'stopper',
      'bbstop:1',
      'sh',
      '-c',
      'trap "exit 3" USR1; while :; do sleep 0.1; done',
    ]);
    try {
      await ok(['stop', '-t', '30', 'stopper']);
      const [st] = JSON.parse(await ok(['inspect', 'stopper']));
      expect(st.exit).toMatchObject({ code: 3, signal: null });
    } finally {
      await cli(['rm', '-f', 'stopper']);
    }
  });

  it("runs with --userns as root: the image's files are container root's through an idmapped store", async () => {
    // An opaque directory and a whiteout, which an overlay in a user namespace reads from user.* xattrs.
    const opq = manyLayers(0, 'opq', [
      tarball([
        { path: 'd/old', data: 'old\n' },
        { path: 'etc/gone', data: 'x' },
      ]),
      tarball([{ path: 'd/.wh..wh..opq' }, { path: 'd/new', data: 'new\n' }, { path: 'etc/.wh.gone' }]),
    ]);
    await ok(['import', opq]);
    const map = ['--uidmap', '0:300000:65536'];
    const refused = await cli(['run', '--rm', '--userns', ...map, 'opq:1', 'true']);
    expect([refused.code, refused.stderr]).toEqual([
      125,
      `nsbox: --userns with an image: container root (host uid 300000) cannot reach the image store ${store}: ` +
        `${work} is not searchable by others (chmod o+x ${work}, or set NSBOX_STORAGE_DIR)\n`,
    ]);
    chmodSync(work, 0o711); // mkdtemp made it 0700
    if (!canIdmap()) {
      // An older kernel, or a filesystem that cannot be idmapped there: refused, and nothing left.
      const r = await cli(['run', '--rm', '--userns', ...map, 'opq:1', 'true']);
      expect([r.code, r.stderr]).toEqual([125, expect.stringMatching(/needs idmapped mounts of the image store/)]);
      expect(readdirSync(`${store}/containers`)).toEqual([]);
      return;
    }
    const before = layersPrint(),
      mounts = hostMounts();
    const id = (await ok(['run', '-d', '--name', 'mapped', '--userns', ...map, 'opq:1', 'sleep', '1000'])).trim();
    try {
      const inside = await ok([
        'exec',
        'mapped',
        'sh',
        '-c',
        'id -u; cat /proc/self/uid_map; ls -ln /bin/busybox; ls /d; test -e /etc/gone || echo gone; echo hi > /etc/new',
      ]);
      const [uid, uidMap, busybox, ...rest] = inside.trim().split('\n');
      expect([uid, uidMap.trim().split(/\s+/)]).toEqual(['0', ['0', '300000', '65536']]);
      expect(busybox).toMatch(/^-rwxr-xr-x\s+1 0\s+0\s/); // root's in the layers, container root's here
      expect(rest).toEqual(['new', 'gone']);
      const upper = `${store}/containers/${id}/upper/etc/new`;
      expect([readFileSync(upper, 'utf8'), statSync(upper).uid]).toEqual(['hi\n', 300000]);
      expect(hostMounts().filter((m) => m.startsWith(store) || (!mounts.includes(m) && m.includes('overlay')))).toEqual(
        [],
      );
    } finally {
      await cli(['rm', '-f', 'mapped']);
    }
    // A foreground run (mount(2) and lowerdir+ alike: the kernel picks), its layer gone after.
    expect(await ok(['run', '--rm', '--userns', 'opq:1', 'cat', '/d/new'])).toBe('new\n');
    expect(readdirSync(`${store}/containers`)).toEqual([]);
    expect(layersPrint()).toBe(before);
    await ok(['rmi', 'opq:1']);
  });

  it("exports a running container's root as a tar that imports back as an image", async () => {
    await ok([
      'run',
      '-d',
      '--name',
      'exp',
      'bb:1',
      'sh',
      '-c',
      'echo mine > /tmp/f; ln -s / /tmp/up; ln -s /etc/shadow /tmp/s; sleep 1000',
    ]);
    try {
      // The links exist once the shell is past them.
      for (let i = 0; i < 100 && (await cli(['exec', 'exp', 'test', '-L', '/tmp/s'])).code !== 0; i++)
        await new Promise((r) => setTimeout(r, 100));
      const r = await cli(['export', '-o', `${work}/exp.tar`, 'exp']);
      expect([r.code, r.stderr]).toEqual([0, '']);
    } finally {
      await cli(['rm', '-f', 'exp']);
    }
    const list = execFileSync('tar', ['tvf', `${work}/exp.tar`], { encoding: 'utf8' });
    expect(list).toMatch(/ tmp\/up -> \/\n/);
    expect(list).toMatch(/ tmp\/s -> \/etc\/shadow\n/);
    expect(list).not.toMatch(/ proc\/|shadow\n(?!.*->)/);
    expect(await ok(['import', '--name', 'exported:1', `${work}/exp.tar`])).toBe(
      'Loaded image: docker.io/library/exported:1\n',
    );
    expect(await ok(['run', 'exported:1', 'cat', '/tmp/f', '/etc/motd'])).toBe('mine\nhello from layer 2\n');
    const stopped = await cli(['export', 'nothere']);
    expect(stopped.code).toBe(125);
  });

  it("keeps pax xattrs: a layer's user.* and security.capability, in the container and in its export", async () => {
    const cap = Buffer.from([1, 0, 0, 2, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const top = tarball([
      { path: 'bin/ping', data: '#!/bin/sh\n', mode: 0o755, xattrs: { 'security.capability': cap } },
      { path: 'etc/x', data: 'x', xattrs: { 'user.note': 'kept' } },
    ]);
    await ok(['import', manyLayers(0, 'xattrs', [top])]);
    /** The value of `name` on `path` in the layer of the image that has it. */
    const inLayer = (path: string, name: string) => {
      for (const l of readdirSync(`${store}/layers`)) {
        let fd: number;
        try {
          fd = openSync(`${store}/layers/${l}/diff/${path}`, constants.O_RDONLY | constants.O_NOFOLLOW);
        } catch {
          continue;
        }
        try {
          return fsops.fgetxattr(fd, name);
        } finally {
          closeSync(fd);
        }
      }
      return undefined;
    };
    expect(inLayer('bin/ping', 'security.capability')).toEqual(cap);
    expect(inLayer('etc/x', 'user.note')?.toString()).toBe('kept');
    await ok(['run', '-d', '--name', 'xat', 'xattrs:1', 'sleep', '1000']);
    try {
      const r = await cli(['export', '-o', `${work}/xat.tar`, 'xat']);
      expect([r.code, r.stderr]).toEqual([0, '']);
    } finally {
      await cli(['rm', '-f', 'xat']);
    }
    const out = readFileSync(`${work}/xat.tar`);
    expect(
      out.includes(Buffer.concat([Buffer.from(' SCHILY.xattr.security.capability='), cap, Buffer.from('\n')])),
    ).toBe(true);
    expect(out.includes(' SCHILY.xattr.user.note=kept\n')).toBe(true);
    await ok(['rmi', 'xattrs:1']);
    await ok(['image', 'prune']);
    expect(inLayer('etc/x', 'user.note')).toBeUndefined();
    // Imported back: the export's xattrs are applied again.
    await ok(['import', '--name', 'xattrs:2', `${work}/xat.tar`]);
    expect(inLayer('bin/ping', 'security.capability')).toEqual(cap);
    expect(inLayer('etc/x', 'user.note')?.toString()).toBe('kept');
    await ok(['rmi', 'xattrs:2']);
  });

  it('runs a 100-layer image (mount(2), short names) and a 50-layer one (fsconfig lowerdir+)', async () => {
    await ok(['import', manyLayers(100, 'many')]);
    const script = 'ls /l | wc -l; cat /l/f0 /l/f49; grep " / " /proc/self/mountinfo';
    const many = await ok(['run', 'many:1', 'sh', '-c', script]);
    expect(many).toMatch(/^100\n0\n49\n.* - overlay .*lowerdir=[0-9a-f]{12}:[0-9a-f]{12}:/);
    await ok(['import', manyLayers(50, 'fifty')]);
    const fifty = await ok(['run', 'fifty:1', 'sh', '-c', script]);
    expect(fifty).toMatch(/^50\n0\n49\n.* - overlay /);
    expect(fifty.split('lowerdir+=')).toHaveLength(52);
    expect(readdirSync(`${store}/containers`)).toEqual([]);
  });

  it('is spawn({ image }) in the library, and --pull=never refuses a missing image', async () => {
    const { spawn } = await import('../../src/index.js');
    process.env.NSBOX_STORAGE_DIR = store;
    try {
      const sb = spawn({ image: 'bb:1', command: [], stdio: ['pipe', 'pipe', 'inherit'] });
      sb.stdin!.end('echo $FOO; pwd\n');
      let out = '';
      sb.stdout!.on('data', (d) => (out += d));
      expect((await sb.exited).code).toBe(0);
      expect(out).toBe('bar\n/tmp\n');
      expect(() => spawn({ image: 'nothere:1', command: ['true'] })).toThrow(/image not found locally: nothere:1/);
    } finally {
      delete process.env.NSBOX_STORAGE_DIR;
    }
    expect(readdirSync(`${store}/containers`)).toEqual([]);
    const r = await cli(['run', '--pull=never', 'nothere:1', 'true']);
    expect([r.code, r.stderr]).toEqual([
      125,
      'nsbox: image not found locally: nothere:1 (pull it, or use --pull=missing)\n',
    ]);
  });

  it('pools sandboxes of an image with no Cmd: each use in a fresh copy-on-write root', async () => {
    execFileSync('tar', ['-C', ROOTFS, '-cf', `${work}/plain.tar`, '.']);
    const id = (await ok(['import', `${work}/plain.tar`])).trim().replace('Loaded image: ', '');
    const { SandboxPool } = await import('../../src/index.js');
    process.env.NSBOX_STORAGE_DIR = store;
    const pool = new SandboxPool({ image: id, size: 2 });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await pool.run(['sh', '-c', 'cat /marker 2>/dev/null; echo x > /marker; echo ok']);
        expect([r.code, r.stdout, r.stderr]).toEqual([0, 'ok\n', '']);
      }
    } finally {
      await pool.close();
      delete process.env.NSBOX_STORAGE_DIR;
    }
    expect(readdirSync(`${store}/containers`)).toEqual([]);
  });

  it('works rootless: layers unpacked as the user, overlay mounted in the user namespace (userxattr)', async () => {
    user = createUser('nsboximg', userDir);
    setSubIds(subIds, [user.name], [`${user.name}:300000:65536`]);
    const cli = cliCopy(userDir);
    execFileSync('cp', [`${work}/bb.tar`, `${userDir}/bb.tar`]);
    execFileSync('chmod', ['a+r', `${userDir}/bb.tar`]);
    const as = (args: string[]) =>
      collect(
        'setpriv',
        [
          '--reuid',
          String(user!.uid),
          '--regid',
          String(user!.gid),
          '--clear-groups',
          '--inh-caps=-all',
          process.execPath,
          cli,
          ...args,
        ],
        {
          env: {
            PATH: process.env.PATH,
            XDG_RUNTIME_DIR: user!.runtime,
            HOME: '/',
            NSBOX_STORAGE_DIR: `${user!.runtime}/store`,
          },
          cwd: '/',
        },
      );
    let r = await as(['import', `${userDir}/bb.tar`]);
    expect([r.code, r.stderr, r.stdout]).toEqual([0, '', 'Loaded image: docker.io/library/bb:1\n']);
    r = await as([
      'run',
      'bb:1',
      'sh',
      '-c',
      'id -u; cat /etc/motd; test -e /etc/group || echo no group; echo x > /new; cat /new',
    ]);
    expect([r.code, r.stderr, r.stdout]).toEqual([0, '', '0\nhello from layer 2\nno group\nx\n']);
    const store = `${user.runtime}/store`;
    expect(readdirSync(`${store}/containers`)).toEqual([]);
    const owners = execFileSync('find', [`${store}/layers`, '-printf', '%U\n'], { encoding: 'utf8' })
      .trim()
      .split('\n');
    expect(new Set(owners)).toEqual(new Set([String(user.uid)]));
    // xattrs: user.* kept; security.* is root's to set, skipped with one warning.
    const cap = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    writeFileSync(
      `${userDir}/x.tar`,
      tarball([
        { path: 'bin/ping', data: 'x', mode: 0o755, xattrs: { 'security.capability': cap } },
        { path: 'etc/x', data: 'x', xattrs: { 'user.k': 'v' } },
      ]),
    );
    chmodSync(`${userDir}/x.tar`, 0o644);
    r = await as(['import', '--name', 'x:1', `${userDir}/x.tar`]);
    expect([r.code, r.stderr]).toEqual([
      0,
      'nsbox: warning: layer archive: 1 extended attribute(s) not applied (only root sets trusted.* and ' +
        'security.*), e.g. security.capability on bin/ping\n',
    ]);
    const x = execFileSync('find', [`${store}/layers`, '-path', '*/diff/etc/x'], { encoding: 'utf8' }).trim();
    const fd = openSync(x, 'r');
    expect(fsops.fgetxattr(fd, 'user.k')?.toString()).toBe('v');
    closeSync(fd);
  });
});
