// Who we are: root (CAP_SYS_ADMIN) or an ordinary user who needs a user namespace, and what
// that user has for a bigger map (subordinate ids and the setuid newuidmap/newgidmap helpers).
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { NsboxError } from '../errors.js';
import { ownCaps } from './caps.js';
import { readSubIds, type SubRange } from './idmap.js';

const CAP_SYS_ADMIN = 21n;

let sysAdmin: boolean | undefined;

/** True when this process may create namespaces without a user namespace (CAP_SYS_ADMIN). */
export function isPrivileged(): boolean {
  sysAdmin ??= ((ownCaps('CapEff') >> CAP_SYS_ADMIN) & 1n) === 1n;
  return sysAdmin;
}

/** True when nsbox runs without root and so puts every container in a user namespace. */
export function isRootless(): boolean {
  return !isPrivileged();
}

/** A clear error when this kernel will not give an ordinary user a user namespace. */
export function checkUserNamespaces(): void {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  if (read('/proc/sys/user/max_user_namespaces') === '0') {
    throw new NsboxError(
      'rootless: user namespaces are disabled (sysctl user.max_user_namespaces=0): run as root, or raise it',
      { code: 'EPERM', step: 'userns' },
    );
  }
  if (read('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
    throw new NsboxError(
      'rootless: this kernel forbids user namespaces to ordinary users' +
        ' (sysctl kernel.unprivileged_userns_clone=0): run as root, or set it to 1',
      { code: 'EPERM', step: 'userns' },
    );
  }
}

/** The login name and ids of this process, as /etc/subuid names owners. */
export function whoami(): { name: string; uid: number; gid: number } {
  const uid = process.geteuid!(),
    gid = process.getegid!();
  let name = String(uid);
  try {
    name = userInfo().username;
  } catch {
    /* no passwd entry: owners by id only */
  }
  return { name, uid, gid };
}

const HELPER_DIRS = ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'];

/** The path of a setuid helper (newuidmap, newgidmap), or undefined. */
export function findHelper(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...HELPER_DIRS];
  for (const d of dirs) {
    const p = `${d}/${name}`;
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface SubIds {
  uid: SubRange[];
  gid: SubRange[];
  newuidmap?: string;
  newgidmap?: string;
}

/** Subordinate ranges of a user (by name or id) and the helpers that can map them. */
export function subIds(names: (string | number)[]): SubIds {
  return {
    uid: readSubIds('/etc/subuid', names),
    gid: readSubIds('/etc/subgid', names),
    newuidmap: findHelper('newuidmap'),
    newgidmap: findHelper('newgidmap'),
  };
}

/** What keeps a rootless user to a single-id map, in words; undefined when a full map is possible. */
export function missingForFullMap(s: SubIds, user: string): string | undefined {
  const missing: string[] = [];
  if (!s.newuidmap || !s.newgidmap) missing.push('newuidmap/newgidmap (Debian package uidmap)');
  const files = [s.uid.length ? '' : '/etc/subuid', s.gid.length ? '' : '/etc/subgid'].filter(Boolean);
  if (files.length) missing.push(`a range for ${user} in ${files.join(' and ')} (e.g. ${user}:100000:65536)`);
  return missing.length ? missing.join(' and ') : undefined;
}

/** Our cgroup v2 directory when it is delegated to us (we may write cgroup.procs and subtree_control). */
export function delegatedCgroup(): string | undefined {
  try {
    const path = /^0::(\/.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
    const mount = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' - ')[1]?.startsWith('cgroup2 '))
      ?.split(' ')[4];
    if (path === undefined || !mount) return undefined;
    const dir = `${mount}${path === '/' ? '' : path}`;
    for (const f of ['', '/cgroup.procs', '/cgroup.subtree_control']) accessSync(`${dir}${f}`, constants.W_OK);
    return dir;
  } catch {
    return undefined;
  }
}

/** The error for what needs real root in a rootless run: what, why, and what to do instead. */
export function rootlessError(what: string, todo: string): NsboxError {
  return new NsboxError(`rootless: ${what}; ${todo}`, { code: 'EPERM', step: 'rootless' });
}

/**
 * What other concerns ask for that cannot work without root, checked before anything is made:
 * cgroup limits without a delegated cgroup (networks: src/network/spec.ts gives rootless runs pasta).
 */
export function checkRootless(spec: { limits?: unknown }): void {
  const limits = spec.limits;
  if (
    limits &&
    typeof limits === 'object' &&
    Object.values(limits).some((v) => v !== undefined) &&
    !delegatedCgroup()
  ) {
    throw rootlessError(
      'resource limits need a cgroup v2 subtree delegated to you, and this process has none',
      'run as root, or start nsbox in a delegated cgroup (systemd-run --user --scope -p Delegate=yes ...)',
    );
  }
}

let warn = (msg: string) => {
  process.stderr.write(`nsbox: warning: ${msg}\n`);
};

/** Where one-line warnings go (default: stderr, prefixed `nsbox: warning:`). */
export function onWarning(fn: (msg: string) => void): void {
  warn = fn;
}

export function warning(msg: string): void {
  warn(msg);
}
