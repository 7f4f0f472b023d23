// Specs and host facts for the golden plans: fixed values, nothing read from this host, so the plan
// text is the same on every machine (and needs no root).
import { cgroupSteps } from '../../dist/cgroups/part.js';
import { initPart } from '../../dist/exec/init.js';
import * as op from '../../dist/plan/ops.js';
import { consolePart } from '../../dist/tty/console.js';

/** Docker's default capability set: CHOWN ... SETFCAP. */
export const DOCKER_CAPS = 0xa80425fbn;

export const FACTS = {
  hostDirs: [{ name: 'usr' }, { name: 'bin', link: 'usr/bin' }, { name: 'lib', link: 'usr/lib' }, { name: 'etc' }],
};

const identity = (over: Record<string, unknown> = {}) => ({
  uid: 0,
  gid: 0,
  groups: [0],
  noNewPrivileges: true,
  userns: null,
  rootless: false,
  caps: { bounding: DOCKER_CAPS, effective: DOCKER_CAPS, permitted: DOCKER_CAPS, inheritable: 0n, ambient: 0n },
  ...over,
});

export function spec(over: Record<string, unknown> = {}) {
  const { hardening, identity: id, ...rest } = over as { hardening?: object; identity?: object };
  return {
    id: '0123456789ab',
    name: 'web',
    hostname: 'web',
    rootfs: '/srv/rootfs',
    cwd: '/',
    command: ['sh', '-c', 'echo hi'],
    readOnly: false,
    stdio: [0, 1, 2],
    namespaces: { pid: true, net: true, ipc: true, uts: true, cgroup: true },
    limits: null,
    env: ['PATH=/usr/bin:/bin', 'HOME=/root', 'HOSTNAME=web'],
    identity: identity(id),
    hardening: {
      seccomp: { profile: {}, source: 'default' },
      seccompStep: op.seccomp(Buffer.alloc(8), 0, 'default'),
      mounts: [],
      devices: [],
      rlimits: [{ name: 'nofile', soft: 1024, hard: 524288 }],
      maskPaths: true,
      allDevices: false,
      ...hardening,
    },
    ...rest,
  };
}

const v1 = (controller: string, path: string) => ({
  hierarchy: { version: 1, mount: `/sys/fs/cgroup/${controller}`, controllers: [controller], own: '/', base: '' },
  path,
  uses: [controller],
});

/** The cgroup part of a container with limits on a hybrid (v1) host: it joins by itself, no wait. */
export const v1Cgroup = {
  steps: (b: unknown) =>
    cgroupSteps(
      b,
      [
        v1('memory', '/sys/fs/cgroup/memory/nsbox/0123456789ab.1.2'),
        v1('pids', '/sys/fs/cgroup/pids/nsbox/0123456789ab.1.2'),
      ],
      { cgroupns: true, selfJoin: true },
    ),
};

/** On a v2 host: CLONE_INTO_CGROUP puts the child in, the plan only roots the namespace and mounts it. */
export const v2Cgroup = {
  steps: (b: unknown) =>
    cgroupSteps(
      b,
      [
        {
          hierarchy: {
            version: 2,
            mount: '/sys/fs/cgroup',
            controllers: ['cpu', 'memory', 'pids'],
            own: '/',
            base: '',
          },
          path: '/sys/fs/cgroup/nsbox/0123456789ab.1.2',
          uses: ['memory', 'pids'],
        },
      ],
      { cgroupns: true, selfJoin: false },
    ),
};

/** A user namespace's part: the parent writes the maps while the child waits. */
export const usernsWait = { flags: 0x10000000, beforeRelease() {} };

export const console = () => consolePart('/dev/pts/7');
export const init = () => initPart();
