// Issue 10, class 4 (CVE-2022-0492), and its v2 sibling (the caller's cgroup as the namespace's root): with --cap-add SYS_ADMIN on a cgroup v1 host, a container that
// was in its own cgroup only in the devices hierarchy mounted the cpu hierarchy and found its root,
// release_agent included, a program the kernel runs as host root. Now a container that can mount
// gets a cgroup in every hierarchy, and its cgroup namespace is rooted there.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, namespaceFlags } from '../../dist/container.js';
import { hierarchies } from '../../dist/cgroups/hierarchy.js';
import * as native from '../../dist/native.js';
import { execResult, reaped } from '../../dist/plan/child.js';
import { resolveSpec } from '../../dist/spec.js';
import { encode } from '../../dist/plan/encode.js';
import { hostFacts } from '../../dist/host/facts.js';
import { hostileSuite } from './util.js';

const s = hostileSuite();
const h = hierarchies();
const v1 = [...h.v1, ...h.named];
const read = (f: string) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return null;
  }
};

/** Mount every v1 hierarchy of the host inside and say what its root shows. */
const MOUNT_ALL = [
  'mkdir -p /tmp/cg',
  ...v1.map(
    (x) =>
      `mount -t cgroup -o ${x.controllers.join(',')} cgroup /tmp/cg && ` +
      `{ echo "${x.controllers.join(',')} $(ls /tmp/cg | grep -c release_agent) $(cat /tmp/cg/tasks | wc -l)"; ` +
      'echo 1 > /tmp/cg/notify_on_release; umount /tmp/cg; }',
  ),
].join('\n');

describe.skipIf(v1.length === 0)('cgroup v1 release_agent with --cap-add SYS_ADMIN (CVE-2022-0492)', () => {
  it("every v1 hierarchy mounted inside shows only the container's own cgroup: no release_agent, nothing of the host", async () => {
    const roots = v1.map((x) => x.mount.replace(/\/$/, ''));
    const before = roots.map((r) => [read(`${r}/release_agent`), read(`${r}/notify_on_release`)]);
    const r = await s.run(MOUNT_ALL, ['--cap-add', 'SYS_ADMIN']);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBe(v1.length);
    for (const line of lines) {
      const [, agents, tasks] = line.split(' ');
      expect(agents, line).toBe('0');
      expect(Number(tasks), line).toBeLessThan(10); // the container's few processes, not the host's
    }
    expect(roots.map((r) => [read(`${r}/release_agent`), read(`${r}/notify_on_release`)])).toEqual(before);
  });

  it('--privileged too', async () => {
    const r = await s.run(MOUNT_ALL, ['--privileged']);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[1]),
    ).toEqual(v1.map(() => '0'));
  });

  it('a container without a cgroup namespace and with CAP_SYS_ADMIN is refused (library)', async () => {
    const { Container } = await import('../../dist/index.js');
    expect(
      () =>
        new Container({ rootfs: s.root(), command: ['true'], capAdd: ['SYS_ADMIN'], namespaces: { cgroup: false } }),
    ).toThrow(/needs its own cgroup namespace/);
  });

  it('with the defence off (no cgroup of its own, the cgroup namespace at the hierarchy root) the cpu root is in reach', async () => {
    const cpu = h.byController.cpu;
    if (cpu?.version !== 1) return;
    const out = mkdtempSync(join(tmpdir(), 'nsbox-cgout-'));
    try {
      const spec = resolveSpec({
        rootfs: s.root(),
        capAdd: ['SYS_ADMIN'],
        mounts: [{ type: 'bind', source: out, target: '/out' }],
        command: [
          'sh',
          '-c',
          `mkdir -p /tmp/cg && mount -t cgroup -o ${cpu.controllers.join(',')} cgroup /tmp/cg && ls /tmp/cg > /out/ls; umount /tmp/cg`,
        ],
      });
      const child = native.spawn({
        flags: namespaceFlags(spec.namespaces),
        ops: encode(compile(spec, hostFacts()).steps).ops,
      });
      const [failed, st] = await Promise.all([execResult(child.errFd), reaped(child.pidfd, () => {})]);
      expect(failed).toBeNull();
      expect(st.code).toBe(0);
      // Only where nsbox itself runs at the root of the cpu hierarchy (as on CI) does the root show.
      const atRoot = readFileSync('/proc/self/cgroup', 'utf8')
        .split('\n')
        .some((l) => /^\d+:[^:]*\bcpu\b[^:]*:\/$/.test(l));
      expect(readFileSync(join(out, 'ls'), 'utf8').includes('release_agent')).toBe(atRoot);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!h.v2)('cgroup v2 with --cap-add SYS_ADMIN', () => {
  it("cgroup2 mounted inside shows the container's own cgroup, not the caller's (no host process, no cgroup.kill of ours)", async () => {
    const r = await s.run('mkdir -p /tmp/u && mount -t cgroup2 none /tmp/u && cat /tmp/u/cgroup.procs', [
      '--cap-add',
      'SYS_ADMIN',
    ]);
    expect(r.stderr).toBe('');
    const pids = r.stdout.trim().split('\n');
    expect(pids.length).toBeGreaterThan(0);
    expect(pids.length).toBeLessThan(10);
    // Container pids as the container sees them (its own PID namespace), never the test's.
    expect(pids).not.toContain(String(process.pid));
  });
});
