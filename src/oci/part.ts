// What an OCI config asks beyond nsbox's ContainerSpec, as steps of the same plan: its mounts (with
// nosuid/noexec on binds), extra masked and read-only paths, sysctls, the domain name, oom_score_adj
// and the umask.
import { closeSync, readFileSync } from 'node:fs';
import { idmappedClone, MOUNT_ATTR } from '../native.js';
import { formatIdMap } from '../userns/idmap.js';
import * as op from '../plan/ops.js';
import type { StartPart } from '../plan/part.js';
import {
  attachOps,
  MASKED_PATHS,
  maskOps,
  openSourcesOps,
  READONLY_PATHS,
  readonlyOps,
  type ResolvedMount,
  resolveMounts,
} from '../rootfs/mounts.js';
import { rootSlots } from '../rootfs/root.js';
import { NsboxError } from '../errors.js';
import type { OciConfig } from './config.js';

const S_IFIFO = 0o010000;
const CLONE_NEWTIME = 0x80;
const PER_LINUX32 = 0x0008;

/** The OCI part: checked now (before anything is made), steps added when the plan is compiled. */
export function ociPart(c: OciConfig): StartPart {
  let mounts: ResolvedMount[];
  try {
    mounts = resolveMounts(c.mounts.map((m) => m.spec));
  } catch (e) {
    throw new NsboxError(`config.json: $.mounts: ${(e as Error).message}`, { field: '$.mounts' });
  }
  const attrsOf = new Map(
    c.mounts.map((m) => [m.spec.target, (m.nosuid ? MOUNT_ATTR.NOSUID : 0) | (m.noexec ? MOUNT_ATTR.NOEXEC : 0)]),
  );
  const propagationOf = new Map(c.mounts.map((m) => [m.spec.target, m.propagation]));
  // Beyond the defaults nsbox applies anyway (src/rootfs/mounts.ts), done the same way: relative to
  // the mounted /proc and /sys, a missing path skipped, any other failure an error.
  const masked = c.maskedPaths.filter((p) => !MASKED_PATHS.includes(p));
  const readonly = c.readonlyPaths.filter((p) => !READONLY_PATHS.includes(p));
  let oom: number | undefined = c.oomScoreAdj;
  try {
    if (oom !== undefined && Number(readFileSync('/proc/self/oom_score_adj', 'utf8')) === oom) oom = undefined;
  } catch {
    /* written anyway */
  }
  // Idmapped binds: made by this process now (a user namespace with the mount's maps, then a detached
  // clone of the source idmapped through it), taken by the child as they are (native/idmap.c).
  const trees = idmappedTrees(c);
  const closeTrees = () => {
    for (const fd of trees.values()) closeSync(fd);
    trees.clear();
  };
  return {
    steps(b) {
      const slots = mounts.map((m) => b.slot(`the mount on ${m.target}`));
      const s1 = b.slot('scratch');
      mounts.forEach((m, i) => {
        const fd = trees.get(m.target);
        if (fd === undefined) return;
        b.keepOpen(fd);
        b.add('namespaces', op.takeFd(fd, slots[i], `the idmapped mount for ${m.target}`));
      });
      b.add('host', ...openSourcesOps(mounts, slots, s1, new Set(trees.keys())));
      mounts.forEach((m, i) => {
        const attrs = attrsOf.get(m.target) ?? 0;
        const words = [attrs & MOUNT_ATTR.NOSUID ? 'nosuid' : '', attrs & MOUNT_ATTR.NOEXEC ? 'noexec' : ''];
        if (m.type === 'bind' && attrs) {
          b.add(
            'host',
            op.setattrSlot(
              slots[i],
              attrs,
              0,
              true,
              `make the mount on ${m.target} ${words.filter(Boolean).join(' ')}`,
            ),
          );
        }
      });
      b.add('mounts', ...attachOps(mounts, slots, s1));
      // Propagation once attached (the kernel sets it only on a mount of this namespace): the mount reopened
      // at its target, in the root.
      mounts.forEach((m) => {
        const p = propagationOf.get(m.target);
        if (!p) return;
        const how = op.OPEN_AT.MUST_EXIST | op.OPEN_AT.NOT_KERNFS;
        b.add(
          'mounts',
          op.openAt(m.target, s1, how, `open the mount on ${m.target}`),
          op.setattrSlot(s1, 0, 0, p.recursive, `set the propagation of ${m.target}`, p.kind),
        );
      });
      if (c.fifos.length) {
        const { dev } = rootSlots(b);
        const dir = b.slot('a directory of /dev');
        for (const f of c.fifos) {
          const rel = f.path.slice('/dev/'.length);
          const slash = rel.lastIndexOf('/');
          if (slash >= 0)
            b.add(
              'mounts',
              op.openBeneath(dev, rel.slice(0, slash), dir, op.OPEN_AT.DIR, `make /dev/${rel.slice(0, slash)}`),
            );
          const at = slash < 0 ? dev : dir;
          b.add(
            'mounts',
            op.mknodAt(at, rel.slice(slash + 1), S_IFIFO | f.mode, 0, 0, `make the FIFO ${f.path}`, f.uid, f.gid),
          );
        }
      }
      // /proc is mounted by now and /proc/sys not yet read-only.
      for (const [k, v] of c.sysctl)
        b.add('mounts', op.writeFile(`/proc/sys/${k.replaceAll('.', '/')}`, v, `set sysctl ${k}`));
      if (c.domainname)
        b.add(
          'mounts',
          op.writeFile('/proc/sys/kernel/domainname', c.domainname, `set the domain name ${c.domainname}`),
        );
      // A new time namespace: unshared now, for the children and for exec, which enters it (Linux 5.18+);
      // its offsets must be written before any process is in it.
      if (c.timeNs !== undefined) {
        b.add('mounts', op.unshare(CLONE_NEWTIME, 'a time namespace'));
        if (c.timeNs)
          b.add('mounts', op.writeFile('/proc/self/timens_offsets', c.timeNs, 'set the time namespace offsets'));
      }
      if (c.personality) b.add('mounts', op.personality(PER_LINUX32, 'LINUX32'));
      if (oom !== undefined)
        b.add('mounts', op.writeFile('/proc/self/oom_score_adj', String(oom), `set oom_score_adj ${oom}`));
      // After every mount: the container's / shared (a new peer group in its namespace) or unbindable.
      if (c.rootfsPropagation !== undefined)
        b.add('protect', op.mount('', '/', '', c.rootfsPropagation, '', 'set the propagation of /'));
      const slots2 = rootSlots(b);
      b.add('protect', ...maskOps(masked, slots2), ...readonlyOps(readonly, slots2));
      if (c.umask !== undefined) b.add('cwd', op.umask(c.umask));
    },
    // The child has its copies of the trees once it exists.
    started: closeTrees,
    afterExit: closeTrees,
    abort: closeTrees,
  };
}

/** The idmapped trees of the config's binds, by target; on a failure none is left open. */
function idmappedTrees(c: OciConfig): Map<string, number> {
  const trees = new Map<string, number>();
  for (const m of c.mounts) {
    if (!m.idmap || m.spec.type !== 'bind') continue;
    try {
      const attrs = MOUNT_ATTR.NODEV | (m.spec.readOnly ? MOUNT_ATTR.RDONLY : 0);
      trees.set(
        m.spec.target,
        idmappedClone(m.spec.source!, formatIdMap(m.idmap.uid), formatIdMap(m.idmap.gid), attrs),
      );
    } catch (e) {
      for (const fd of trees.values()) closeSync(fd);
      const err = e as NodeJS.ErrnoException;
      throw new NsboxError(
        `config.json: $.mounts: cannot make the idmapped mount on ${m.spec.target}: ${err.message}`,
        { field: '$.mounts', code: err.code },
      );
    }
  }
  return trees;
}
