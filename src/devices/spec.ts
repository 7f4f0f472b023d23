// Which device nodes a container may use: Docker's default set, plus `--device HOST[:CONTAINER][:rwm]`.
import { realpathSync, statSync } from 'node:fs';
import { checkTarget, type ResolvedMount } from '../rootfs/mounts.js';

export interface DeviceSpec {
  /** A device node on the host, e.g. /dev/fuse (unused with `node`). */
  host: string;
  /** Where it appears inside (default: the same path; with `node`, a path under /dev). */
  path?: string;
  /** Made in the container's /dev with this number, owner and mode instead of binding the host's node
   *  (an OCI config's linux.devices; not in a user namespace, where mknod is refused). Without `path`:
   *  no node, only the devices cgroup's rule (an OCI config's resources.devices allow rules; -1: any). */
  node?: DeviceNode;
  /** Any of r (read), w (write), m (mknod); default rwm. */
  access?: string;
}

/** A devices-cgroup rule: type c, b or a (all); -1 is any major or minor. */
export interface DeviceRule {
  type: 'c' | 'b' | 'a';
  major: number;
  minor: number;
  access: string;
}

export interface DeviceNode {
  type: 'c' | 'b';
  major: number;
  minor: number;
  /** Permission bits, default 0666. */
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface ResolvedDevice extends DeviceRule {
  type: 'c' | 'b';
  host: string;
  path: string;
  /** Made with mknod (`node`): its permission bits and owner. */
  made?: { mode: number; uid: number; gid: number };
  /** A rule of the devices cgroup only (`node` without `path`): nothing is made or bound. */
  ruleOnly?: boolean;
}

/**
 * What a default container may open, as Docker allows: mknod of any node (using one is a separate
 * check), and read/write on null, zero, full, random, urandom, tty, console, ptmx and the ptys.
 */
export const DEFAULT_DEVICE_RULES: DeviceRule[] = [
  { type: 'c', major: -1, minor: -1, access: 'm' },
  { type: 'b', major: -1, minor: -1, access: 'm' },
  ...(
    [
      [1, 3],
      [1, 5],
      [1, 7],
      [1, 8],
      [1, 9],
      [5, 0],
      [5, 1],
      [5, 2],
    ] as const
  ).map(([major, minor]) => ({ type: 'c' as const, major, minor, access: 'rwm' })),
  { type: 'c', major: 136, minor: -1, access: 'rwm' },
];

function fail(message: string): never {
  throw new Error(message);
}

export function resolveDevices(list: DeviceSpec[] | undefined): ResolvedDevice[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) fail('devices must be an array');
  return list.map((d) => {
    if (d?.node !== undefined) return madeDevice(d, d.node);
    if (!d || typeof d.host !== 'string' || !d.host.startsWith('/'))
      fail(`device ${d?.host}: the host path must be absolute`);
    const access = d.access ?? 'rwm';
    if (!/^(?!.*(.).*\1)[rwm]{1,3}$/.test(access))
      fail(`device ${d.host}: access must be letters of rwm, got ${JSON.stringify(access)}`);
    let st, host: string;
    try {
      host = realpathSync(d.host);
      st = statSync(host);
    } catch {
      fail(`device ${d.host}: no such device on the host`);
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice()) fail(`device ${d.host}: not a character or block device`);
    const path = checkTarget(d.path ?? d.host, `device ${d.host}`);
    const rdev = st.rdev;
    // glibc's makedev: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31.
    const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & 0xfffff000);
    const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfffff00);
    return { type: st.isCharacterDevice() ? 'c' : 'b', major, minor, access, host, path };
  });
}

function madeDevice(d: DeviceSpec, n: DeviceNode): ResolvedDevice {
  const access = d.access ?? 'rwm';
  const what = `device ${d.path}`;
  if (!/^(?!.*(.).*\1)[rwm]{1,3}$/.test(access))
    fail(`${what}: access must be letters of rwm, got ${JSON.stringify(access)}`);
  if (n.type !== 'c' && n.type !== 'b') fail(`${what}: node.type must be c or b`);
  const int = (v: number | undefined, dflt: number, max: number, k: string) => {
    const x = v ?? dflt;
    if (!Number.isInteger(x) || x < 0 || x > max) fail(`${what}: node.${k} must be a whole number from 0 to ${max}`);
    return x;
  };
  const rule = d.path === undefined;
  const num = (v: number, k: string, max: number) => (rule && v === -1 ? -1 : int(v, -1, max, k));
  const [major, minor] = [num(n.major, 'major', 0xfff), num(n.minor, 'minor', 0xfffff)];
  if (rule) return { type: n.type, major, minor, access, host: '', path: '', ruleOnly: true };
  const made = {
    mode: int(n.mode, 0o666, 0o777, 'mode'),
    uid: int(n.uid, 0, 2 ** 32 - 2, 'uid'),
    gid: int(n.gid, 0, 2 ** 32 - 2, 'gid'),
  };
  const path = checkTarget(d.path ?? '', what);
  if (!path.startsWith('/dev/')) fail(`${what}: a device made with node must be under /dev`);
  return { type: n.type, major, minor, access, host: '', path, made };
}

/** `HOST[:CONTAINER][:rwm]` as docker's --device takes it. */
export function parseDevice(arg: string): DeviceSpec {
  const parts = arg.split(':');
  if (parts.length > 3 || parts.some((p) => p === ''))
    fail(`invalid --device value: ${arg} (expected HOST[:CONTAINER][:rwm])`);
  const [host, a, b] = parts;
  if (parts.length === 3) return { host, path: a, access: b };
  if (parts.length === 2) return /^[rwm]+$/.test(a) ? { host, access: a } : { host, path: a };
  return { host };
}

/** `c 1:3 rwm` as the v1 devices.allow file takes it. */
export function ruleText(r: DeviceRule): string {
  if (r.type === 'a') return 'a';
  const n = (x: number) => (x < 0 ? '*' : String(x));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

/** Devices as file binds: the host node, opened before pivot_root, attached at its path inside. */
export function deviceMounts(devices: ResolvedDevice[]): ResolvedMount[] {
  return devices
    .filter((d) => !d.made && !d.ruleOnly)
    .map((d) => ({
      type: 'bind',
      source: d.host,
      target: d.path,
      dir: false,
      readOnly: false,
      device: true,
    }));
}
