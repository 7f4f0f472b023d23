// Volumes, tmpfs mounts and the masked and read-only paths of /proc and /sys. Host sources are
// opened as detached trees before pivot_root; every target is opened inside the new root with
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) and the mount attached to that fd, so neither a
// symlink in the rootfs nor one swapped in while the container starts can send a mount elsewhere.
import { realpathSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { MOUNT_ATTR } from '../native.js';
import { parseBytes, SIZE_HELP } from '../size.js';
import * as op from '../plan/ops.js';
import type { Slot, Step } from '../plan/steps.js';

export interface BindMountSpec {
  type: 'bind';
  /** A host file or directory. */
  source: string;
  /** Where it appears inside; created when missing. */
  target: string;
  readOnly?: boolean;
}

export interface TmpfsMountSpec {
  type: 'tmpfs';
  target: string;
  /** The name /proc/self/mountinfo shows as its source (default "tmpfs", as Docker's). */
  source?: string;
  /** Bytes, or a size such as '64m' (default: the kernel's, half of RAM). */
  size?: number | string;
  /** Octal mode of the root directory, default 1777. */
  mode?: number;
  readOnly?: boolean;
  /** Default false: tmpfs mounts are noexec, nosuid and nodev unless asked. */
  exec?: boolean;
  suid?: boolean;
  dev?: boolean;
}

export type MountSpec = BindMountSpec | TmpfsMountSpec;

export interface ResolvedMount {
  type: 'bind' | 'tmpfs';
  target: string;
  readOnly: boolean;
  /** bind: the host path, resolved. */
  source?: string;
  /** bind: the source is a directory (else a file: the target is made a file). */
  dir?: boolean;
  /** bind: a device given with --device, the one bind that is not nodev. */
  device?: boolean;
  /** tmpfs: fsconfig options (size=, mode=). */
  options?: string[];
  /** tmpfs: MOUNT_ATTR_* flags. */
  attrs?: number;
}

/** OCI's (and Docker's) default masked paths: files get /dev/null, directories an empty read-only tmpfs. */
export const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
/** OCI's default read-only paths. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

function fail(message: string): never {
  throw new Error(message);
}

/** A tmpfs size: the one size grammar (src/size.ts), more than 0. */
export function parseSize(v: number | string, what: string): number {
  const n = parseBytes(v);
  if (n === null || n === 0) fail(`${what}: invalid size ${JSON.stringify(v)} (expected ${SIZE_HELP})`);
  return n;
}

/** An absolute, normalized target that is not the root, not /proc, /sys or under them, and not /dev. */
export function checkTarget(target: unknown, what: string): string {
  if (typeof target !== 'string' || !target.startsWith('/'))
    fail(`${what}: target must be an absolute path, got ${JSON.stringify(target)}`);
  if (target.includes('\0')) fail(`${what}: target contains a NUL byte`);
  const t = posix.normalize(target).replace(/\/+$/, '') || '/';
  if (t === '/') fail(`${what}: cannot mount over the root`);
  if (t === '/proc' || t.startsWith('/proc/')) fail(`${what}: mounts over /proc are not allowed (${t})`);
  if (t === '/sys' || t.startsWith('/sys/')) fail(`${what}: mounts over /sys are not allowed (${t})`);
  if (t === '/dev') fail(`${what}: mounts over /dev are not allowed (a path under it is)`);
  return t;
}

export function resolveMounts(list: MountSpec[] | undefined): ResolvedMount[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) fail('mounts must be an array');
  const out: ResolvedMount[] = [];
  const seen = new Set<string>();
  list.forEach((m, i) => {
    const what = `mount ${i + 1}`;
    if (!m || typeof m !== 'object') fail(`${what}: must be an object`);
    const target = checkTarget(m.target, m.type === 'bind' ? `volume ${m.source}:${m.target}` : `tmpfs ${m.target}`);
    if (seen.has(target)) fail(`duplicate mount target: ${target}`);
    seen.add(target);
    if (m.type === 'bind') {
      if (typeof m.source !== 'string' || !m.source.startsWith('/'))
        fail(`volume ${m.source}:${m.target}: source must be an absolute host path`);
      let source: string, dir: boolean;
      try {
        source = realpathSync(m.source);
        dir = statSync(source).isDirectory();
      } catch {
        fail(`volume ${m.source}:${m.target}: source not found: ${m.source}`);
      }
      out.push({ type: 'bind', source, target, dir, readOnly: !!m.readOnly });
    } else if (m.type === 'tmpfs') {
      const name = m.source ?? 'tmpfs';
      if (typeof name !== 'string' || !/^[^\s,\0]{1,64}$/.test(name))
        fail(`tmpfs ${target}: invalid source name ${JSON.stringify(name)}`);
      const options: string[] = [`source=${name}`];
      if (m.size !== undefined) options.push(`size=${parseSize(m.size, `tmpfs ${target}`)}`);
      const mode = m.mode ?? 0o1777;
      if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) fail(`tmpfs ${target}: invalid mode ${mode}`);
      options.push(`mode=${mode.toString(8)}`);
      const attrs =
        (m.readOnly ? MOUNT_ATTR.RDONLY : 0) |
        (m.exec ? 0 : MOUNT_ATTR.NOEXEC) |
        (m.suid ? 0 : MOUNT_ATTR.NOSUID) |
        (m.dev ? 0 : MOUNT_ATTR.NODEV);
      out.push({ type: 'tmpfs', target, readOnly: !!m.readOnly, options, attrs });
    } else {
      fail(`${what}: type must be "bind" or "tmpfs", got ${JSON.stringify((m as { type?: unknown }).type)}`);
    }
  });
  // Parents before children, as docker does: a mount inside another lands on top of it.
  const depth = (m: ResolvedMount) => m.target.split('/').length;
  return out
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i)
    .map((x) => x.m);
}

/**
 * Host-side steps, before pivot_root: open each bind source as a detached tree in slots[i].
 * The source was resolved by realpath: a symlink met now means it was swapped since, so refuse it.
 */
export function openSourcesOps(
  mounts: ResolvedMount[],
  slots: Slot[],
  scratch: Slot,
  given: ReadonlySet<string> = new Set(), // targets whose tree is in its slot already (an idmapped bind)
): Step[] {
  const ops: Step[] = [];
  mounts.forEach((m, i) => {
    if (m.type !== 'bind' || given.has(m.target)) return;
    ops.push(
      op.openAt(m.source!, scratch, op.OPEN_AT.NOSYMLINKS, `open volume source ${m.source}`),
      op.cloneTree(scratch, slots[i], true, `open volume source ${m.source} for a bind mount`),
    );
    // A --device bind stays a bind of the host's node (it must open as that device) but read-only:
    // chmod, chown and utimes inside are EROFS, reads and writes of the device work.
    if (m.device)
      ops.push(
        op.setattrSlot(
          slots[i],
          MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC,
          0,
          false,
          `make the bind of device ${m.source} read-only`,
        ),
      );
    // nodev always: a device node in a volume opens nothing (devices are given with --device).
    if (!m.device)
      ops.push(
        op.setattrSlot(
          slots[i],
          MOUNT_ATTR.NODEV | (m.readOnly ? MOUNT_ATTR.RDONLY : 0),
          0,
          true,
          `make volume ${m.source} ${m.readOnly ? 'read-only and ' : ''}nodev`,
        ),
      );
  });
  return ops;
}

/** A mount point in the root; one that resolves (through a symlink) into /proc or /sys is refused. */
const target = (path: string, slot: Slot, how: number): Step => ({
  ...op.openAt(path, slot, how | op.OPEN_AT.NOT_KERNFS, `make the mount point ${path} in the root`),
  why: { EXDEV: 'it resolves into /proc or /sys' },
});

/** Steps inside the new root: attach each mount onto its target. `scratch` is a free slot. */
export function attachOps(mounts: ResolvedMount[], slots: Slot[], scratch: Slot): Step[] {
  const ops: Step[] = [];
  mounts.forEach((m, i) => {
    const slot = slots[i];
    if (m.type === 'bind') {
      ops.push(
        target(m.target, scratch, m.dir ? op.OPEN_AT.DIR : op.OPEN_AT.FILE),
        op.moveMountTo(slot, scratch, `bind ${m.source} on ${m.target}`),
      );
    } else {
      ops.push(
        op.fsmount('tmpfs', m.options!, slot, m.attrs!, `make a tmpfs for ${m.target}`),
        target(m.target, scratch, op.OPEN_AT.DIR),
        op.moveMountTo(slot, scratch, `mount tmpfs on ${m.target}`),
      );
    }
  });
  return ops;
}

const HARD = MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC;

/** A path of /proc or /sys as the slot of that mounted tree and the path inside it. */
function inTree(path: string, proc: Slot, sys: Slot): [Slot, string] {
  return path.startsWith('/proc/') ? [proc, path.slice('/proc/'.length)] : [sys, path.slice('/sys/'.length)];
}

/** The slots the masks work in: the mounted /proc, /sys and /dev, and two scratch slots. */
export interface ProtectSlots {
  proc: Slot;
  sys: Slot;
  dev: Slot;
  a: Slot;
  b: Slot;
}

/**
 * Masks: a path of /proc or /sys is opened relative to that mounted tree with no symlink and no mount
 * crossed, any other relative to the root; either is skipped only when the tree has no such path, any
 * other failure is an error. Files get a read-only bind of the container's own /dev/null, directories
 * an empty read-only tmpfs (native/paths.c OP_MASK_AT).
 */
export function maskOps(paths: readonly string[], s: ProtectSlots): Step[] {
  return paths.flatMap((path) => {
    if (path.startsWith('/proc/') || path.startsWith('/sys/')) {
      const [tree, rel] = inTree(path, s.proc, s.sys);
      return [op.maskAt(tree, s.dev, rel, `mask ${path}`)];
    }
    return [op.openAt('/', s.a, op.OPEN_AT.DIR, 'open the root'), op.maskAt(s.a, s.dev, path.slice(1), `mask ${path}`)];
  });
}

/** Read-only binds of paths onto themselves, opened as maskOps opens them (a missing one is skipped). */
export function readonlyOps(paths: readonly string[], s: ProtectSlots): Step[] {
  return paths.flatMap((path) => {
    const inside = path.startsWith('/proc/') || path.startsWith('/sys/');
    const [tree, rel] = inTree(path, s.proc, s.sys);
    return [
      inside
        ? op.openBeneath(tree, rel, s.a, op.OPEN_AT.OPTIONAL, `open ${path} to make it read-only`)
        : op.openAt(path, s.a, op.OPEN_AT.OPTIONAL, `open ${path} to make it read-only`),
      op.cloneTree(s.a, s.b, true, `bind ${path} onto itself`),
      op.setattrSlot(s.b, HARD, 0, true, `make ${path} read-only`),
      op.moveMountTo(s.b, s.a, `mount ${path} read-only`),
    ];
  });
}

/** OCI's default masked and read-only paths of /proc and /sys, after they are mounted. */
export function protectOps(s: ProtectSlots): Step[] {
  return [...maskOps(MASKED_PATHS, s), ...readonlyOps(READONLY_PATHS, s)];
}
