// Golden plans: the ordered steps of representative containers, compared with checked-in text.
// Pure (no root, no namespaces): a change to the set-up order shows as a readable diff here.
// UPDATE_GOLDEN=1 rewrites the files.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../dist/compile.js';
import { MS } from '../../dist/native.js';
import { execPlan } from '../../dist/exec/exec.js';
import { PlanBuilder } from '../../dist/plan/builder.js';
import * as op from '../../dist/plan/ops.js';
import { planText } from '../../dist/plan/text.js';
import { ociPart } from '../../dist/oci/part.js';
import { holdPart } from '../../dist/plan/hold.js';
import { console as tty, FACTS, init, spec, usernsWait, v1Cgroup, v2Cgroup } from './fixtures.js';

const DIR = resolve(__dirname, 'golden');

function golden(name: string, text: string): void {
  const file = resolve(DIR, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

const userns = {
  how: 'direct',
  uidMap: [{ container: 0, host: 1000000000, size: 65536 }],
  gidMap: [{ container: 0, host: 1000000000, size: 65536 }],
  setgroups: true,
};
const rootless = {
  how: 'single',
  uidMap: [{ container: 0, host: 1000, size: 1 }],
  gidMap: [{ container: 0, host: 1000, size: 1 }],
  setgroups: false,
};

const FIXTURES: Record<string, () => ReturnType<typeof compile>> = {
  'default-v1': () => compile(spec({ limits: { memory: 67108864 } }), FACTS, [v1Cgroup]),
  'default-v2': () => compile(spec({ limits: { memory: 67108864 } }), FACTS, [v2Cgroup]),
  'no-cgroup': () => compile(spec(), FACTS),
  userns: () => compile(spec({ identity: { userns } }), FACTS, [usernsWait]),
  rootless: () => compile(spec({ identity: { userns: rootless, rootless: true } }), FACTS, [usernsWait]),
  'tty-init': () => compile(spec(), FACTS, [tty(), init()]),
  'host-root': () => compile(spec({ rootfs: 'host', readOnly: true }), FACTS),
  volumes: () =>
    compile(
      spec({
        hardening: {
          mounts: [
            { type: 'bind', source: '/srv/data', target: '/data', dir: true, readOnly: true },
            { type: 'bind', source: '/srv/app.conf', target: '/etc/app.conf', dir: false, readOnly: false },
            { type: 'tmpfs', target: '/tmp', readOnly: false, options: ['size=1048576', 'mode=1777'], attrs: 14 },
          ],
        },
      }),
      FACTS,
    ),
  devices: () =>
    compile(
      spec({
        hardening: {
          devices: [
            { host: '/dev/fuse', path: '/dev/fuse', type: 'c', major: 10, minor: 229, access: 'rwm' },
            {
              host: '',
              path: '/dev/x/made',
              type: 'c',
              major: 10,
              minor: 666,
              access: 'rwm',
              made: { mode: 0o640, uid: 0, gid: 5 },
            },
          ],
        },
      }),
      FACTS,
    ),
  // nsbox-runtime's container: no parent-death signal, held before exec, the config's extras.
  oci: () =>
    compile(spec({ dieWithParent: false }), FACTS, [
      v1Cgroup,
      ociPart(
        {
          mounts: [
            {
              spec: { type: 'tmpfs', target: '/run', size: '1m', exec: true, suid: false },
              nosuid: true,
              noexec: false,
            },
          ],
          maskedPaths: ['/proc/kcore', '/proc/nonexistent-mask'],
          readonlyPaths: ['/proc/sys', '/proc/nonexistent-ro'],
          sysctl: [['net.ipv4.ping_group_range', '0 0']],
          umask: 0o27,
          domainname: 'example.org',
          fifos: [{ path: '/dev/in/fifo', mode: 0o600, uid: 0, gid: 5 }],
          rootfsPropagation: MS.SHARED | MS.REC,
        } as never,
        FACTS,
      ),
      holdPart('/run/nsbox-runtime/web/exec.fifo'),
    ]),
  'user-1000-no-nnp': () =>
    compile(
      spec({
        cwd: '/home/app',
        identity: {
          uid: 1000,
          gid: 1000,
          groups: [1000],
          noNewPrivileges: false,
          caps: { bounding: 0xa80425fbn, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n },
        },
      }),
      FACTS,
    ),
};

describe('golden plans', () => {
  for (const [name, make] of Object.entries(FIXTURES)) it(name, () => golden(name, planText(make())));

  it('exec into a container', () => {
    const steps = execPlan(
      {
        pid: 4242,
        pidfd: 9,
        namespaces: ['user', 'mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup'],
        cgroup: true,
        command: ['sh'],
        env: ['PATH=/bin'],
        cwd: '/srv',
        stdio: [5, 6, 6],
        tty: false,
        creds: [
          { phase: 'rlimits', step: op.setrlimit(7, 1024, 524288, 'nofile=1024:524288') },
          { phase: 'identity', step: op.setresuid(0) },
          { phase: 'nnp', step: op.prctl(38, [1, 0, 0, 0], 'set no_new_privs') },
          { phase: 'seccomp', step: op.seccomp(Buffer.alloc(8), 0, 'default') },
        ],
      },
      ['/sys/fs/cgroup/memory/nsbox/0123456789ab.1.2'],
    );
    golden('exec', `${steps.map((s: { desc: string }) => s.desc).join('\n')}\n`);
  });
});

describe('the builder keeps the order safe', () => {
  const exec = () => op.exec('true', ['true'], [], ['/bin/true']);
  it('refuses a path resolved while inherited descriptors are open', () => {
    const b = new PlanBuilder().add('root', op.mkdir('/x')).add('exec', exec());
    expect(() => b.build()).toThrow('resolves a path while inherited descriptors are open');
    const c = new PlanBuilder().add('stdio', op.mkdir('/x')).add('descriptors', op.closeOthers([])).add('exec', exec());
    expect(() => c.build()).toThrow('"mkdir /x" resolves a path');
  });
  it('refuses seccomp before identity when no_new_privs is set, and anything but exec steps after it', () => {
    const base = () => new PlanBuilder().add('descriptors', op.closeOthers([])).add('exec', exec());
    const filter = op.seccomp(Buffer.alloc(8), 0, 'x');
    expect(() =>
      base()
        .add('privileged-seccomp', filter)
        .add('nnp', op.prctl(38, [1, 0, 0, 0], 'nnp'))
        .build(),
    ).toThrow('seccomp filter in phase privileged-seccomp');
    expect(() => base().add('identity', filter).build()).toThrow('seccomp filter in phase identity');
    expect(
      base()
        .add('seccomp', filter)
        .add('init', op.init())
        .build()
        .steps.map((s: { kind: string }) => s.kind),
    ).toEqual(['closeInherited', 'seccomp', 'init', 'exec']);
  });
  it('refuses a plan that does not end in one exec', () => {
    expect(() => new PlanBuilder().add('descriptors', op.closeOthers([])).build()).toThrow('end in one exec');
  });
  it("hands out slots up to the addon's table, then refuses with a spec error", () => {
    const b = new PlanBuilder();
    for (let i = 0; i < 1024; i++) expect(b.slot()).toBe(i);
    expect(() => b.slot('the mount on /x')).toThrow(/too many mounts.*\/x/);
  });
});

describe('fds a part keeps through the closing of inherited ones', () => {
  const exec = () => op.exec('true', ['true'], [], ['/bin/true']);
  it('stay open for their step, and must be closed before the root is built', () => {
    const ok = new PlanBuilder()
      .add('descriptors', op.closeOthers([]))
      .keepOpen(9)
      .add('namespaces', op.setns(9, 0x40000000, 'net'), op.close([9], 'the netns fd'))
      .add('root', op.mkdir('/x'))
      .add('exec', exec());
    expect(ok.build().steps[0]).toMatchObject({ kind: 'closeInherited', keep: [9] });
    const late = new PlanBuilder()
      .add('descriptors', op.closeOthers([]))
      .keepOpen(9)
      .add('root', op.mkdir('/x'))
      .add('cwd', op.close([9], 'the netns fd'))
      .add('exec', exec());
    expect(() => late.build()).toThrow('inherited fd 9 is still open when the root is built');
  });
});
