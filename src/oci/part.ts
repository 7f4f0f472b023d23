// What an OCI config asks beyond nsbox's ContainerSpec, as steps of the same plan: its mounts (with
// nosuid/noexec on binds), extra masked and read-only paths, sysctls, the domain name, oom_score_adj
// and the umask.
import { readFileSync, statSync } from 'node:fs';
import { MOUNT_ATTR } from '../native.js';
import type { HostFacts } from '../host/facts.js';
import * as op from '../plan/ops.js';
import type { StartPart } from '../plan/part.js';
import type { Step } from '../plan/steps.js';
import { attachOps, openSourcesOps, READONLY_PATHS, type ResolvedMount, resolveMounts } from '../rootfs/mounts.js';
import { NsboxError } from '../errors.js';
import type { OciConfig } from './config.js';

const HARD = MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC;

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The OCI part: checked now (before anything is made), steps added when the plan is compiled. */
export function ociPart(c: OciConfig, facts: HostFacts): StartPart {
  let mounts: ResolvedMount[];
  try {
    mounts = resolveMounts(c.mounts.map((m) => m.spec));
  } catch (e) {
    throw new NsboxError(`config.json: $.mounts: ${(e as Error).message}`, { field: '$.mounts' });
  }
  const attrsOf = new Map(
    c.mounts.map((m) => [m.spec.target, (m.nosuid ? MOUNT_ATTR.NOSUID : 0) | (m.noexec ? MOUNT_ATTR.NOEXEC : 0)]),
  );
  const defaultMasked = new Set(facts.maskedPaths.map((m) => m.path));
  // /proc and /sys show the container the host's kernel: what is a directory there is one inside.
  const masked = c.maskedPaths.filter((p) => !defaultMasked.has(p)).map((path) => ({ path, dir: isDir(path) }));
  const readonly = c.readonlyPaths.filter((p) => !READONLY_PATHS.includes(p));
  let oom: number | undefined = c.oomScoreAdj;
  try {
    if (oom !== undefined && Number(readFileSync('/proc/self/oom_score_adj', 'utf8')) === oom) oom = undefined;
  } catch {
    /* written anyway */
  }
  return {
    steps(b) {
      const slots = mounts.map((m) => b.slot(`the mount on ${m.target}`));
      const [s1, s2] = [b.slot('scratch'), b.slot('scratch')];
      b.add('host', ...openSourcesOps(mounts, slots, s1));
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
      // /proc is mounted by now and /proc/sys not yet read-only.
      for (const [k, v] of c.sysctl)
        b.add('mounts', op.writeFile(`/proc/sys/${k.replaceAll('.', '/')}`, v, `set sysctl ${k}`));
      if (c.domainname)
        b.add(
          'mounts',
          op.writeFile('/proc/sys/kernel/domainname', c.domainname, `set the domain name ${c.domainname}`),
        );
      if (oom !== undefined)
        b.add('mounts', op.writeFile('/proc/self/oom_score_adj', String(oom), `set oom_score_adj ${oom}`));
      const protect: Step[] = [];
      for (const { path, dir } of masked) {
        protect.push(
          dir
            ? op.fsmount('tmpfs', ['mode=555'], s1, HARD, `make an empty tmpfs to mask ${path}`)
            : op.openTree('/dev/null', s1),
          op.openAt(path, s2, op.OPEN_AT.OPTIONAL, `open ${path} to mask it`),
          op.moveMountTo(s1, s2, `mask ${path}`),
        );
      }
      for (const path of readonly) {
        protect.push(
          op.openAt(path, s1, op.OPEN_AT.OPTIONAL, `open ${path} to make it read-only`),
          op.cloneTree(s1, s2, true, `bind ${path} onto itself`),
          op.setattrSlot(s2, HARD, 0, true, `make ${path} read-only`),
          op.moveMountTo(s2, s1, `mount ${path} read-only`),
        );
      }
      b.add('protect', ...protect);
      if (c.umask !== undefined) b.add('cwd', op.umask(c.umask));
    },
  };
}
