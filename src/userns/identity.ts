// Who the command runs as: the user namespace and its maps, uid/gid/groups, capabilities and
// no_new_privs, resolved from the spec before anything is created.
import { NsboxError } from '../errors.js';
import { fieldOf } from './fields.js';
import { allCaps, capMask, normalizeCap, ownUsableCaps, resolveCaps } from './caps.js';
import { checkIdMap, parseIdRange, readSubIds, toHostId, type IdRange } from './idmap.js';
import { checkRootless, checkUserNamespaces, isRootless, missingForFullMap, subIds, whoami } from './rootless.js';
import { resolveUser } from './users.js';

export interface UsernsOptions {
  /** `C:H:S` strings or ranges; default: container root on an unprivileged host range. */
  uidMap?: (string | IdRange)[];
  /** Default: the uid map. */
  gidMap?: (string | IdRange)[];
}

/** The ContainerSpec fields of this concern. */
export interface IdentitySpec {
  /**
   * A new user namespace: true maps container ids 0-65535 to an unprivileged host range (the
   * `nsbox` entry of /etc/subuid and /etc/subgid, else DEFAULT_ROOT_RANGE). Always on without root.
   */
  userns?: boolean | UsernsOptions;
  /** `UID[:GID]` or `NAME[:GROUP]` (names from the rootfs' /etc/passwd and /etc/group). Default 0. */
  user?: number | string;
  /** Extra supplementary groups (ids or names). */
  groupAdd?: (number | string)[];
  /** Capabilities on top of Docker's default set; 'ALL' for every one. */
  capAdd?: string[];
  /** Capabilities taken from the default set; 'ALL' leaves only capAdd. */
  capDrop?: string[];
  /** Default true: setuid binaries and file capabilities raise nothing. false is dangerous. */
  noNewPrivileges?: boolean;
  /** Every capability and no no_new_privs (dangerous; the namespaces stay). */
  privileged?: boolean;
  /** The five capability sets given outright (an OCI config's process.capabilities), instead of
   *  capAdd/capDrop; a set left out is empty. */
  capSets?: Partial<Record<keyof CapSets, string[]>>;
}

/** How the parent writes the maps: itself (root), with newuidmap/newgidmap, or one id of its own. */
export interface UsernsPlan {
  how: 'direct' | 'helper' | 'single';
  uidMap: IdRange[];
  gidMap: IdRange[];
  /** false when setgroups(2) is denied in the namespace (a single-id map written unprivileged). */
  setgroups: boolean;
  newuidmap?: string;
  newgidmap?: string;
  /** Said once when the container starts (e.g. why the map is a single id). */
  warning?: string;
}

export interface CapSets {
  bounding: bigint;
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  ambient: bigint;
}

export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
  caps: CapSets;
  noNewPrivileges: boolean;
  /** null: no user namespace (root on the host is root inside). */
  userns: UsernsPlan | null;
  rootless: boolean;
}

/** Where container root lands for root's --userns without an `nsbox` entry in /etc/subuid: 0:1000000000:65536. */
export const DEFAULT_ROOT_RANGE = { start: 1_000_000_000, count: 65536 };
/** A full map for a container: ids 0-65535. */
const FULL = 65536;

export const IDENTITY_KEYS = [
  'userns',
  'user',
  'groupAdd',
  'capAdd',
  'capDrop',
  'noNewPrivileges',
  'privileged',
  'capSets',
] as const;

function fail(flag: string, message: string, code?: string): never {
  throw new NsboxError(message, { step: flag, code, field: fieldOf(flag), kind: code === 'EPERM' ? 'host' : 'spec' });
}

function mapList(list: (string | IdRange)[] | undefined, flag: string): IdRange[] | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) fail(flag, '{field}: expected a list of CONTAINER:HOST:SIZE');
  return checkIdMap(
    list.map((r) => (typeof r === 'string' ? parseIdRange(r, flag) : { ...r })),
    flag,
  );
}

const showMap = (m: IdRange[]) => m.map((r) => `${r.container}:${r.host}:${r.size}`).join(',');

/** Root's maps: explicit, or container 0-65535 on the `nsbox` subordinate range or the default one. */
function rootUserns(o: UsernsOptions): UsernsPlan {
  const pick = (file: string) => {
    const r = readSubIds(file, ['nsbox'])[0] ?? DEFAULT_ROOT_RANGE;
    return [{ container: 0, host: r.start, size: Math.min(r.count, FULL) }];
  };
  const uidMap = mapList(o.uidMap, 'uidmap') ?? pick('/etc/subuid');
  const gidMap = mapList(o.gidMap, 'gidmap') ?? (o.uidMap ? uidMap : pick('/etc/subgid'));
  return { how: 'direct', uidMap, gidMap, setgroups: true };
}

/** An ordinary user's maps: explicit (through the helpers), full with subordinate ids, else one id. */
function rootlessUserns(o: UsernsOptions): UsernsPlan {
  checkUserNamespaces();
  const me = whoami();
  const sub = subIds([me.name, me.uid]);
  const helpers = { newuidmap: sub.newuidmap, newgidmap: sub.newgidmap };
  const missing = missingForFullMap(sub, me.name);
  const uidMap = mapList(o.uidMap, 'uidmap');
  const gidMap = mapList(o.gidMap, 'gidmap') ?? uidMap;
  if (uidMap || gidMap) {
    const u = uidMap ?? [{ container: 0, host: me.uid, size: 1 }];
    const g = gidMap ?? [{ container: 0, host: me.gid, size: 1 }];
    const own =
      u.length === 1 &&
      u[0].host === me.uid &&
      u[0].size === 1 &&
      g.length === 1 &&
      g[0].host === me.gid &&
      g[0].size === 1;
    if (own) return { how: 'single', uidMap: u, gidMap: g, setgroups: false };
    if (!sub.newuidmap || !sub.newgidmap) {
      fail(
        'uidmap',
        'rootless: id maps beyond your own ids need newuidmap and newgidmap (Debian package uidmap)' +
          ' and ranges in /etc/subuid and /etc/subgid',
        'EPERM',
      );
    }
    return { how: 'helper', uidMap: u, gidMap: g, setgroups: true, ...helpers };
  }
  if (missing) {
    return {
      how: 'single',
      setgroups: false,
      warning: `rootless with a single-id map (container root is uid ${me.uid}, no other ids): missing ${missing}`,
      uidMap: [{ container: 0, host: me.uid, size: 1 }],
      gidMap: [{ container: 0, host: me.gid, size: 1 }],
    };
  }
  const full = (own: number, r: { start: number; count: number }) => [
    { container: 0, host: own, size: 1 },
    { container: 1, host: r.start, size: Math.min(r.count, FULL - 1) },
  ];
  return {
    how: 'helper',
    setgroups: true,
    ...helpers,
    uidMap: checkIdMap(full(me.uid, sub.uid[0]), 'uidmap'),
    gidMap: checkIdMap(full(me.gid, sub.gid[0]), 'gidmap'),
  };
}

const SET_NAMES = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const;

/** Explicit sets: each within what nsbox holds (a capability it lacks is an error, not a skip). */
function explicitCapSets(sets: NonNullable<IdentitySpec['capSets']>, have: bigint): CapSets {
  if (typeof sets !== 'object' || sets === null) fail('capSets', 'capSets must be an object of lists');
  const out = { bounding: 0n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n };
  for (const k of Object.keys(sets))
    if (!(SET_NAMES as readonly string[]).includes(k)) fail('capSets', `unknown capability set: ${k}`);
  for (const k of SET_NAMES) {
    const list = sets[k] ?? [];
    if (!Array.isArray(list)) fail('capSets', `capSets.${k} must be a list`);
    const names = list.map((c) => normalizeCap(c, `capabilities.${k}`));
    if (names.includes('ALL')) fail('capSets', `capSets.${k}: ALL is not a capability`);
    out[k] = capMask(names);
    const missing = names.find((c) => !(have & capMask([c])));
    if (missing)
      fail('capSets', `capabilities.${k}: nsbox itself does not hold CAP_${missing}, so it cannot give it`, 'EPERM');
  }
  return out;
}

function resolveCapSets(spec: IdentitySpec, uid: number, userns: boolean): CapSets {
  if (spec.capSets !== undefined) {
    return explicitCapSets(spec.capSets, userns ? capMask(allCaps()) : ownUsableCaps());
  }
  const wanted = resolveCaps(spec.capAdd, spec.capDrop, !!spec.privileged);
  // A new user namespace starts with every capability; without one the child has only ours.
  const have = userns ? capMask(allCaps()) : ownUsableCaps();
  const added = (spec.capAdd ?? []).map((c) => normalizeCap(c, 'cap-add'));
  for (const c of added) {
    if (c !== 'ALL' && !(have & capMask([c]))) {
      fail(
        'cap-add',
        `{field} ${c}: nsbox itself does not hold CAP_${c}, so it cannot give it (try a user namespace)`,
        'EPERM',
      );
    }
  }
  const set = capMask(wanted) & have;
  if (uid === 0) return { bounding: set, effective: set, permitted: set, inheritable: 0n, ambient: 0n };
  // Another user keeps the set as its bound only; what was added by name it holds, as podman does.
  const own = added.includes('ALL') ? set : capMask(added.filter((c) => c !== 'ALL')) & set;
  return { bounding: set, effective: own, permitted: own, inheritable: own, ambient: own };
}

/** Checks and completes this concern's fields of a spec; `rootfs` is resolved already. */
/** Root's maps for `userns` (as resolveIdentity makes them), or null without a user namespace. */
export function rootUsernsMaps(userns: IdentitySpec['userns']): UsernsPlan | null {
  if (!userns) return null;
  return rootUserns(typeof userns === 'object' ? userns : {});
}

export function resolveIdentity(spec: IdentitySpec, rootfs: string): Identity {
  for (const k of ['capAdd', 'capDrop', 'groupAdd'] as const) {
    if (spec[k] !== undefined && !Array.isArray(spec[k])) fail(k, `${k} must be a list`);
  }
  const rootless = isRootless();
  if (spec.userns === false && rootless)
    fail('userns', 'rootless: without root every container needs a user namespace (userns cannot be false)', 'EPERM');
  const opts: UsernsOptions | undefined =
    typeof spec.userns === 'object' && spec.userns ? spec.userns : spec.userns ? {} : undefined;
  let userns: UsernsPlan | null = null;
  if (rootless) {
    checkRootless(spec as Parameters<typeof checkRootless>[0]);
    userns = rootlessUserns(opts ?? {});
  } else if (opts) userns = rootUserns(opts);
  const user = resolveUser(spec.user, spec.groupAdd, rootfs);
  if (userns) {
    const where = (kind: string, m: IdRange[]) => `${kind} map ${showMap(m)}`;
    if (toHostId(userns.uidMap, user.uid) === undefined)
      fail('user', `{field}: uid ${user.uid} is not mapped in the user namespace (${where('uid', userns.uidMap)})`);
    if (toHostId(userns.gidMap, user.gid) === undefined)
      fail('user', `{field}: gid ${user.gid} is not mapped in the user namespace (${where('gid', userns.gidMap)})`);
    if (!userns.setgroups && (spec.groupAdd?.length ?? 0) > 0) {
      fail(
        'group-add',
        '{field}: setgroups is denied in a single-id user namespace (rootless without subordinate ids)',
        'EPERM',
      );
    }
    if (!userns.setgroups) user.groups = [];
    const unmapped = user.groups.find((g) => toHostId(userns!.gidMap, g) === undefined);
    if (unmapped !== undefined)
      fail(
        'group-add',
        `{field}: gid ${unmapped} is not mapped in the user namespace (${where('gid', userns.gidMap)})`,
      );
  }
  const caps = resolveCapSets(spec, user.uid, !!userns);
  const noNewPrivileges = spec.noNewPrivileges ?? !spec.privileged;
  if (typeof noNewPrivileges !== 'boolean') fail('noNewPrivileges', 'noNewPrivileges must be true or false');
  return { ...user, caps, noNewPrivileges, userns, rootless };
}
