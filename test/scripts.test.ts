// The rootfs scripts' own interface (building a Debian root needs the network to Debian: not here).
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';

const DEBIAN = resolve(__dirname, '..', 'rootfs-scripts', 'debian.sh');
const sh = (...args: string[]) => spawnSync('sh', [DEBIAN, ...args], { encoding: 'utf8' });

it('debian.sh: --help, and bad options or package lists refused with its usage', () => {
  const help = sh('--help');
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/^usage: rootfs-scripts\/debian.sh \[--include PKG,\.\.\.\]/);
  expect(sh('--bogus', '/tmp/x')).toMatchObject({
    status: 2,
    stderr: expect.stringMatching(/^debian.sh: unknown option --bogus\n/),
  });
  expect(sh('--include', 'a;rm', '/tmp/x')).toMatchObject({
    status: 2,
    stderr: 'debian.sh: --include: invalid package list: a;rm\n',
  });
  expect(sh().status).toBe(2);
});
