// The parent's side of a user namespace: while the child waits at its sync step, write its
// uid_map and gid_map (or have newuidmap/newgidmap write them).
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { StartPart } from '../plan/part.js';
import { CLONE } from '../native.js';
import { errnoInfo, NsboxError } from '../errors.js';
import { formatIdMap, type IdRange } from './idmap.js';
import type { UsernsPlan } from './identity.js';
import { warning } from './rootless.js';

/** One write(2) of the whole text, as the kernel wants for a map; errors name the file. */
function writeProc(path: string, text: string): void {
  let fd = -1;
  try {
    fd = openSync(path, constants.O_WRONLY);
    const n = writeSync(fd, text);
    if (n !== Buffer.byteLength(text)) throw Object.assign(new Error('short write'), { errno: -5 });
  } catch (e) {
    const errno = -((e as NodeJS.ErrnoException).errno ?? -5);
    const [name, msg] = errnoInfo(errno);
    throw new NsboxError(`write ${path}: ${msg} (${name})`, { code: name, step: `write ${path}` });
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

// node:child_process (and node:net with it) costs ~3 ms to load: only when a helper runs.
const require = createRequire(import.meta.url);

function runHelper(helper: string, pid: number, map: IdRange[]): void {
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  const args = [String(pid), ...map.flatMap((r) => [String(r.container), String(r.host), String(r.size)])];
  try {
    execFileSync(helper, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; status?: number | null; code?: string };
    const why = err.stderr?.toString().trim().split('\n').pop() || (err.code ?? `exit status ${err.status}`);
    throw new NsboxError(`${helper} ${args.join(' ')}: ${why}`, { code: 'EPERM', step: helper });
  }
}

/** Writes the maps of process `pid`'s user namespace; a map written twice or refused throws naming the file. */
export function writeIdMaps(pid: number, u: UsernsPlan): void {
  if (u.how === 'helper') {
    runHelper(u.newuidmap!, pid, u.uidMap);
    runHelper(u.newgidmap!, pid, u.gidMap);
    return;
  }
  // Without CAP_SETGID over the parent namespace the kernel takes a gid_map only once setgroups is denied.
  if (!u.setgroups) writeProc(`/proc/${pid}/setgroups`, 'deny');
  writeProc(`/proc/${pid}/uid_map`, formatIdMap(u.uidMap));
  writeProc(`/proc/${pid}/gid_map`, formatIdMap(u.gidMap));
}

/** The StartPart of a container in a new user namespace. */
export function usernsPart(u: UsernsPlan): StartPart {
  if (u.warning) warning(u.warning);
  return {
    flags: CLONE.NEWUSER,
    beforeRelease: (pid) => writeIdMaps(pid, u),
  };
}
