// Issue 10, class 3: /dev/null, zero, full, random, urandom and tty were writable binds of the host's
// own nodes, so container root (CAP_CHOWN, CAP_FOWNER) changed the host's inodes: `chmod 600
// /dev/zero` inside changed the host's. Now they are nodes of the container's own (mknod) without a
// user namespace and read-only binds in one; masks and --device binds cannot be re-moded either.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostileSuite } from './util.js';

const s = hostileSuite();
const NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** What a change of mode, owner or times would show. */
function hostStat(path: string): string {
  const st = statSync(path);
  return `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.ctimeMs}`;
}

const ATTACK = [
  ...NODES.map((d) => `chmod 600 /dev/${d} 2>&1; chown 1:1 /dev/${d} 2>&1; touch /dev/${d} 2>&1`),
  'chmod 600 /proc/timer_list 2>&1; chown 1:1 /proc/timer_list 2>&1',
  'ls -ln /dev/zero | cut -c1-10',
  'echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1 | tr -d " "',
].join('; ');

describe('host device inodes', () => {
  for (const [label, opts] of [
    ['a default container', []],
    ['a user namespace', ['--userns']],
  ] as const) {
    it(`chmod, chown and touch of the default devices in ${label} leave the host's nodes as they were`, async () => {
      const before = NODES.map((d) => hostStat(`/dev/${d}`));
      chmodSync(dirname(s.root()), 0o755); // reachable by the user namespace's root (an unprivileged host uid)
      const r = await s.run(ATTACK, [...opts]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      // The devices still work.
      expect(lines.at(-1)).toBe('00000000');
      if (opts.length === 0) {
        // The container's own nodes: chmod works on them, as in docker; the masked file's /dev/null bind is read-only.
        expect(lines.at(-2)).toBe('crw-------');
        expect(lines.filter((l) => /Read-only file system/.test(l)).length).toBe(2);
      } else {
        // Read-only binds of the host's nodes: each change refused.
        expect(lines.at(-2)).toBe('crw-rw-rw-');
        expect(lines.filter((l) => /Read-only file system/.test(l)).length).toBe(NODES.length * 3 + 2);
      }
      expect(NODES.map((d) => hostStat(`/dev/${d}`))).toEqual(before);
    });
  }

  it('a --device bind is read-only: the device works, chmod cannot reach the host node', async () => {
    const before = hostStat('/dev/full');
    const r = await s.run(
      'chmod 600 /dev/myfull 2>&1; chown 1 /dev/myfull 2>&1; probe openw /dev/myfull; head -c 2 /dev/myfull | od -An -tx1',
      ['--device', '/dev/full:/dev/myfull'],
    );
    expect(r.stdout).toMatch(
      /^chmod: \/dev\/myfull: Read-only file system\nchown: \/dev\/myfull: Read-only file system\nerr ENOSPC\n 00 00\n$/,
    );
    expect(hostStat('/dev/full')).toBe(before);
  });

  it('with the defence off (a writable bind of a host node, as before) container root re-modes the host node', async () => {
    // A node of our own on the host stands in for /dev/zero, bound writable as a volume.
    const dir = mkdtempSync(join(tmpdir(), 'nsbox-node-'));
    try {
      const node = join(dir, 'zero');
      execFileSync('mknod', ['-m', '666', node, 'c', '1', '5']);
      chmodSync(node, 0o666);
      const r = await s.run('chmod 600 /mnt/zero && echo changed', ['-v', `${dir}:/mnt`]);
      expect(r.stdout).toBe('changed\n');
      expect((statSync(node).mode & 0o777).toString(8)).toBe('600');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
