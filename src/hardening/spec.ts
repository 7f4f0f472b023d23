// The hardening part of a container spec: seccomp, volumes and tmpfs mounts, masked paths,
// extra devices and rlimits. Checked before anything is created; errors name the field.
import { NsboxError } from '../errors.js';
import { resolveMounts, type MountSpec, type ResolvedMount } from '../rootfs/mounts.js';
import { resolveSeccomp, seccompOp, type ResolvedSeccomp, type SeccompSetting } from '../seccomp/index.js';
import type { Op } from '../plan/ops.js';
import { capNames } from '../userns/caps.js';
import { resolveDevices, type DeviceSpec, type ResolvedDevice } from '../devices/spec.js';
import { resolveUlimits, type Rlimit, type UlimitSpec } from './rlimits.js';

export interface HardeningSpec {
  /** 'default' (Docker's profile, the default), 'unconfined', a profile object or a profile JSON file. */
  seccomp?: SeccompSetting;
  /** Volumes (bind mounts of host paths) and tmpfs mounts, mounted in this order. */
  mounts?: MountSpec[];
  /** Host devices to add (bound in, and allowed by the devices cgroup). */
  devices?: DeviceSpec[];
  /** rlimits by name (nofile, nproc, core, ...): a number, or { soft, hard }; 'unlimited' or -1. */
  ulimits?: UlimitSpec;
  /** Default true. false leaves /proc/kcore, /proc/sys, ... unmasked and writable (dangerous). */
  maskPaths?: boolean;
}

export interface Hardening {
  seccomp: ResolvedSeccomp;
  /** The plan step that installs the filter (compiled for the container's capabilities), or null. */
  seccompStep: Op | null;
  mounts: ResolvedMount[];
  devices: ResolvedDevice[];
  rlimits: Rlimit[];
  maskPaths: boolean;
  /** Every device may be opened (privileged). */
  allDevices: boolean;
}

export const HARDENING_KEYS = ['seccomp', 'mounts', 'devices', 'ulimits', 'maskPaths'] as const;

function field<T>(step: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof NsboxError) {
      e.field ??= step;
      throw e;
    }
    throw new NsboxError((e as Error).message, { step, field: step });
  }
}

/** `privileged` (src/userns/identity.ts) turns the defaults off as docker's --privileged does. */
export function resolveHardening(spec: HardeningSpec & { privileged?: boolean }, capBounding?: bigint): Hardening {
  const privileged = !!spec.privileged;
  const seccomp = field('seccomp', () => resolveSeccomp(spec.seccomp ?? (privileged ? 'unconfined' : 'default')));
  const caps = capBounding === undefined ? undefined : capNames(capBounding);
  if (spec.maskPaths !== undefined && typeof spec.maskPaths !== 'boolean') {
    throw new NsboxError('maskPaths must be true or false', { step: 'maskPaths', field: 'maskPaths' });
  }
  return {
    seccomp,
    seccompStep: seccompOp(seccomp, caps),
    mounts: field('mounts', () => resolveMounts(spec.mounts)),
    devices: field('devices', () => resolveDevices(spec.devices)),
    rlimits: field('ulimits', () => resolveUlimits(spec.ulimits)),
    maskPaths: spec.maskPaths ?? !privileged,
    allDevices: privileged,
  };
}
