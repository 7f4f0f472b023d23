// Which devices a container may open, enforced by the kernel: a v1 `devices` cgroup (devices.deny
// "a", then one devices.allow line per rule), or on cgroup v2 a BPF_PROG_TYPE_CGROUP_DEVICE program
// attached to the container's cgroup. Every container gets one (unless privileged): with CAP_MKNOD a
// container may make any node, and this is what stops it opening the host's disk through it.
import { closeSync, openSync, rmdirSync, constants as fsConstants } from 'node:fs';
import type { StartPart } from '../plan/part.js';
import type { PlanBuilder } from '../plan/builder.js';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import * as op from '../plan/ops.js';
import type { CgroupPart } from '../cgroups/part.js';
import { cgroupName, mkdirIn, PARENT, removeParent } from '../cgroups/cgroup.js';
import { errnoOf, sleep, writeFile } from '../cgroups/files.js';
import { hierarchies } from '../cgroups/hierarchy.js';
import type { ResolvedSpec } from '../spec.js';
import { deviceProgram } from './bpf.js';
import { DEFAULT_DEVICE_RULES, ruleText, type DeviceRule } from './spec.js';

/** The default rules and the container's --device ones. */
export function deviceRules(s: ResolvedSpec): DeviceRule[] {
  return [
    ...DEFAULT_DEVICE_RULES,
    ...s.hardening.devices.map(({ type, major, minor, access }) => ({ type, major, minor, access })),
  ];
}

function rmdirQuiet(path: string): boolean {
  try {
    rmdirSync(path);
    return true;
  } catch (e) {
    return errnoOf(e) === 'ENOENT';
  }
}

export class DevicesPart implements StartPart {
  cgroupFd?: number;
  beforeRelease?: (pid: number) => void;
  /** Directories made here, removed at the end. */
  private made: string[] = [];

  constructor(
    private readonly s: ResolvedSpec,
    private readonly cg: CgroupPart | null,
  ) {
    const rules = deviceRules(s);
    const h = hierarchies();
    const v1 = h.v1.find((x) => x.controllers.includes('devices'));
    try {
      if (v1) this.v1(v1.base, rules);
      else if (h.v2) this.v2(h.v2.base, rules);
      else
        throw new NsboxError('cannot restrict devices: no devices cgroup (v1) and no cgroup v2 on this host', {
          step: 'devices cgroup',
        });
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  private procs = '';
  private tasks = '';

  private v1(base: string, rules: DeviceRule[]): void {
    // The container's own cgroup may have a directory in this hierarchy already (it can mount: it
    // has one in every hierarchy, src/cgroups/part.ts): then the rules go there and it joins it.
    const own = this.cg?.cgroup.dirs.find(
      (d) => d.hierarchy.version === 1 && d.hierarchy.controllers.includes('devices'),
    );
    const parent = `${base}/${PARENT}`,
      dir = own?.path ?? `${parent}/${cgroupName(this.s.id)}`;
    if (!own) {
      mkdirIn(parent, dir);
      this.made.push(dir);
    }
    writeFile(`${dir}/devices.deny`, 'a', 'cannot restrict devices');
    for (const r of rules) writeFile(`${dir}/devices.allow`, ruleText(r), 'cannot allow a device');
    if (own) return;
    this.procs = `${dir}/cgroup.procs`;
    this.tasks = `${dir}/tasks`;
    // In a user namespace the child cannot write a host cgroup file: the parent moves it while it waits.
    if (this.s.identity.userns)
      this.beforeRelease = (pid) =>
        writeFile(this.procs, String(pid), 'cannot move the container into its devices cgroup');
  }

  private v2(base: string, rules: DeviceRule[]): void {
    const own = this.cg?.cgroup.v2?.path;
    const dir = own ?? `${base}/${PARENT}/${cgroupName(this.s.id)}`;
    if (!own) {
      mkdirIn(`${base}/${PARENT}`, dir);
      this.made.push(dir);
    }
    const fd = openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    try {
      const prog = native.native.bpfLoadDeviceProgram(deviceProgram(rules));
      try {
        native.native.bpfAttachDevice(prog, fd);
      } finally {
        closeSync(prog);
      }
    } catch (e) {
      closeSync(fd);
      throw new NsboxError(`cannot restrict devices in ${dir}: ${(e as Error).message}`, {
        code: (e as NodeJS.ErrnoException).code,
        step: 'devices cgroup',
      });
    }
    if (own) closeSync(fd);
    else this.cgroupFd = fd; // clone3(CLONE_INTO_CGROUP)
  }

  /** v1 without a user namespace: the child moves itself in, first thing (no wait for the parent). */
  steps(b: PlanBuilder): void {
    // `tasks`, not cgroup.procs: the child is one thread, and a thread move skips the RCU grace period.
    if (this.tasks && !this.beforeRelease) b.add('cgroup', op.writeFile(this.tasks, '0', 'enter the devices cgroup'));
  }

  private closeFd(): void {
    if (this.cgroupFd !== undefined) closeSync(this.cgroupFd);
    this.cgroupFd = undefined;
  }

  async afterExit(): Promise<void> {
    this.closeFd();
    for (const dir of this.made) {
      for (let i = 0; i < 200 && !rmdirQuiet(dir); i++) await sleep(10); // the last processes are leaving
      removeParent(dir);
    }
  }

  abort(): void {
    this.closeFd();
    for (const dir of this.made) if (rmdirQuiet(dir)) removeParent(dir);
  }
}

const CAP_SYS_ADMIN = 21n;

/**
 * The devices part for a container, or null when the kernel already stops it opening any device
 * but the ones bound for it:
 * - privileged: every device allowed, as docker does;
 * - rootless or in a user namespace: mknod needs CAP_MKNOD of the host's user namespace, and mounts
 *   made in a user namespace are nodev;
 * - without CAP_SYS_ADMIN and without --device: every mount of the container is nodev (rootfs,
 *   volumes, tmpfs, /dev — the default devices are binds, mounts of their own) and it cannot make a
 *   mount that is not, so a node made with CAP_MKNOD opens nothing. This spares the v1 cgroup move,
 *   which waits for an RCU grace period (~15 ms) on an otherwise idle host.
 */
export function devicesPart(s: ResolvedSpec, cg: CgroupPart | null): DevicesPart | null {
  if (s.hardening.allDevices || s.identity.rootless || s.identity.userns) return null;
  const canMount = ((s.identity.caps.bounding >> CAP_SYS_ADMIN) & 1n) === 1n;
  if (!canMount && s.hardening.devices.length === 0) return null;
  return new DevicesPart(s, cg);
}
