// A user named in the spec is looked up in the rootfs' /etc/passwd and /etc/group, which are parsed again
// only when they change: each change (in place, or the file replaced) is seen by the next start.
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run } from '../../dist/index.js';
import { ROOTFS } from '../helpers.js';

let dir: string;
let root: string;
beforeAll(() => {
  dir = mkdtempSync('/tmp/nsbox-users-');
  root = `${dir}/rootfs`;
  cpSync(ROOTFS, root, { recursive: true, verbatimSymlinks: true });
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ids = async () => (await run({ rootfs: root, user: 'app', command: ['id'] })).stdout.trim();

it('reads passwd and group again when they change, not from a stale copy', async () => {
  writeFileSync(`${root}/etc/passwd`, 'root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/:/bin/sh\n');
  writeFileSync(`${root}/etc/group`, 'root:x:0:\napp:x:1234:\nextra:x:77:app\n');
  expect(await ids()).toBe('uid=1234(app) gid=1234(app) groups=77(extra)');
  // Changed in place, to the same size.
  writeFileSync(`${root}/etc/passwd`, 'root:x:0:0::/root:/bin/sh\napp:x:4321:1234::/:/bin/sh\n');
  expect(await ids()).toBe('uid=4321(app) gid=1234(app) groups=77(extra)');
  // Replaced by another file.
  writeFileSync(`${dir}/group`, 'root:x:0:\napp:x:1234:\n');
  rmSync(`${root}/etc/group`);
  cpSync(`${dir}/group`, `${root}/etc/group`);
  expect(await ids()).toBe('uid=4321(app) gid=1234(app)');
  // A symlink is never followed: no such user then.
  rmSync(`${root}/etc/passwd`);
  symlinkSync('/etc/passwd', `${root}/etc/passwd`);
  await expect(ids()).rejects.toThrow(/no user app in .*\/etc\/passwd/);
});
