// `nsbox info` and `run --debug` say which cgroup hierarchy is used, and it is the host's.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectNothingLeft, nsbox, ROOTFS, snapshot } from '../helpers.js';

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

/** What the host has, read independently of nsbox: v2 when cgroup2 is where memory is. */
const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
const v1Memory = / - cgroup cgroup \S*\bmemory\b/.test(mounts);
const expected = v1Memory ? 'v1' : 'v2';

describe('which hierarchy', () => {
  it('nsbox info names the kernel, the hierarchy and each controller', async () => {
    const r = await nsbox(['info']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`kernel: ${release()}`);
    expect(lines[1]).toMatch(new RegExp(`^cgroup: ${expected}\\b`));
    for (const c of ['cpu', 'memory', 'pids']) {
      const row = lines.find((l) => l.startsWith(`${c} `))!;
      expect(row).toMatch(new RegExp(`^${c}\\s+${expected}\\s+/sys/fs/cgroup/\\S*nsbox`));
    }
    const json = JSON.parse((await nsbox(['info', '--format', 'json'])).stdout);
    expect(json.cgroup).toBe(expected);
  });

  it("run --debug says where the container's cgroup is", async () => {
    const r = await nsbox(['--debug', '--memory', '32m', ROOTFS, 'true']);
    expect(r.code).toBe(0);
    const line = r.stderr.split('\n').find((l) => l.startsWith('nsbox: cgroup '))!;
    expect(line).toMatch(
      new RegExp(`^nsbox: cgroup ${expected}: /sys/fs/cgroup/(\\S*/)?nsbox/[0-9a-f]{12}\\.\\d+\\.\\d+ \\(memory`),
    );
    const path = /: (\S+) \(memory/.exec(line)![1];
    expect(existsSync(path)).toBe(false); // removed at the end
  });

  it('rejects stray arguments', async () => {
    const r = await nsbox(['info', 'extra']);
    expect(r.stderr).toBe('nsbox: info takes no arguments: extra\n');
    expect(r.code).toBe(125);
  });
});
