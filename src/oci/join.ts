// linux.namespaces joined by path. Without a joined user namespace, the runtime's thread joins them
// before the clone (setns of these types is allowed in a threaded process; create exits right after)
// and the child starts in them; a mount namespace is joined by the child itself. With one, the child
// joins the rest, as runc and crun do: the user namespace first (then it is root there), the others
// (owned by it) next, then it unshares the new ones, so that they are owned by the joined user
// namespace and root there may set them up. A pid namespace is always the thread's (it applies to
// the children made after the join): with a joined user namespace it must be joined too, one that
// namespace owns, since /proc is mounted by root of the joined user namespace.
import { closeSync, constants as fsConstants, openSync, readFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import { CLONE } from '../native.js';
import * as op from '../plan/ops.js';
import type { StartPart } from '../plan/part.js';
import type { NsType, OciConfig } from './config.js';

const FLAG: Record<NsType, number> = {
  user: CLONE.NEWUSER,
  mount: CLONE.NEWNS,
  network: CLONE.NEWNET,
  ipc: CLONE.NEWIPC,
  uts: CLONE.NEWUTS,
  pid: CLONE.NEWPID,
  cgroup: CLONE.NEWCGROUP,
  time: 0,
};
/** The child joins them in this order after the user namespace (mount last: the others' paths are the host's). */
const ORDER: NsType[] = ['user', 'ipc', 'uts', 'network', 'cgroup', 'mount'];

function open(type: NsType, path: string): number {
  try {
    return openSync(path, fsConstants.O_RDONLY); // close-on-exec, as libuv opens every fd;
  } catch (e) {
    throw new NsboxError(`config.json: namespace ${type}: cannot open ${path}: ${(e as Error).message}`, {
      field: 'namespaces',
    });
  }
}

function joinHere(type: NsType, path: string): void {
  const fd = open(type, path);
  try {
    native.setns(fd, FLAG[type]);
  } catch (e) {
    throw new NsboxError(`config.json: cannot join the ${type} namespace ${path}: ${(e as Error).message}`, {
      field: 'namespaces',
      code: (e as NsboxError).code,
    });
  } finally {
    closeSync(fd);
  }
}

/**
 * Joins what the runtime's thread may join now, and returns the part that has the child join the
 * rest (null when nothing is left). Its fds are closed by `done` once the child exists.
 */
export function joinNamespaces(c: OciConfig): (StartPart & { done(): void }) | null {
  const user = c.joins.some((j) => j.type === 'user');
  const inChild = c.joins
    .filter((j) => j.type !== 'pid' && (user || j.type === 'mount'))
    .sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type));
  for (const j of c.joins) if (!inChild.includes(j)) joinHere(j.type, j.path);
  if (inChild.length === 0) return null;
  const fds: number[] = [];
  const close = () => {
    for (const fd of fds.splice(0)) closeSync(fd);
  };
  try {
    for (const j of inChild) fds.push(open(j.type, j.path));
  } catch (e) {
    close();
    throw e;
  }
  const ns = c.spec.namespaces ?? {};
  // With a joined user namespace the new ones are unshared after the joins (the cgroup namespace by
  // the cgroup part, which unshares it later anyway).
  const unshare = user
    ? (c.joins.some((j) => j.type === 'mount') ? 0 : CLONE.NEWNS) |
      (ns.net ? CLONE.NEWNET : 0) |
      (ns.ipc ? CLONE.NEWIPC : 0) |
      (ns.uts ? CLONE.NEWUTS : 0)
    : 0;
  return {
    clearFlags: CLONE.NEWNS | unshare,
    joinsUserns: user ? { setgroups: setgroupsAllowed(c) } : undefined,
    steps(b) {
      for (const fd of fds) b.keepOpen(fd);
      inChild.forEach((j, i) => {
        const join = op.setns(fds[i], FLAG[j.type], `${j.path} as the ${j.type}`);
        if (j.type === 'user') {
          // Root of the joined namespace, as runc's init becomes; its groups are left as the kernel allows.
          b.add('userns', join, op.usernsRoot(false, true, true));
        } else b.add('namespaces', join);
      });
      if (unshare) b.add('namespaces', op.unshare(unshare, 'the new namespaces'));
      b.add('namespaces', op.close(fds, 'the fds of the joined namespaces'));
    },
    started: close,
    abort: close,
    done: close,
  };
}

/** The host uid and gid of root in a joined user namespace, when its path names a process's. */
export function joinedRoot(c: OciConfig): { uid: number; gid: number } | null {
  const j = c.joins.find((x) => x.type === 'user');
  const m = j && /^\/proc\/(\d+)\/ns\/user$/.exec(j.path);
  if (!m) return null;
  const host = (file: string) => {
    for (const line of readFileSync(`/proc/${m[1]}/${file}`, 'utf8').split('\n')) {
      const [inside, outside, size] = line.trim().split(/\s+/).map(Number);
      if (inside === 0 && size > 0) return outside;
    }
    return null;
  };
  try {
    const uid = host('uid_map'),
      gid = host('gid_map');
    return uid === null || gid === null ? null : { uid, gid };
  } catch {
    return null;
  }
}

/** False when the joined user namespace (by a process's path) denies setgroups. */
function setgroupsAllowed(c: OciConfig): boolean {
  const j = c.joins.find((x) => x.type === 'user');
  const m = j && /^\/proc\/(\d+)\/ns\/user$/.exec(j.path);
  try {
    return !m || readFileSync(`/proc/${m[1]}/setgroups`, 'utf8').trim() !== 'deny';
  } catch {
    return true;
  }
}
