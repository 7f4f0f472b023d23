// Seccomp for a container: 'default' (Docker's profile), 'unconfined', or a Docker/OCI profile
// (an object or a JSON file), compiled to BPF for the native architecture and installed by the
// child as one of its last steps.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { NsboxError } from '../errors.js';
import * as op from '../plan/ops.js';
import type { Step } from '../plan/steps.js';
import { readBounded } from '../files.js';
import { esc } from '../check.js';
import { nativeArch } from './arch.js';
import { compile } from './compile.js';
import { DEFAULT_PROFILE, DOCKER_DEFAULT_CAPS } from './default.js';
import { checkProfile, filterFlags, parseProfile, toPolicy, type SeccompProfile } from './profile.js';

export type { SeccompProfile } from './profile.js';
export { DEFAULT_PROFILE, DOCKER_DEFAULT_CAPS } from './default.js';

/** 'default', 'unconfined', a profile object, or the path of a profile JSON file. */
export type SeccompSetting = 'default' | 'unconfined' | string | SeccompProfile;

/** A checked setting: the profile to apply, or null for none. */
export interface ResolvedSeccomp {
  profile: SeccompProfile | null;
  /** Where it came from, for messages: 'default', 'unconfined' or the file. */
  source: string;
}

export function resolveSeccomp(setting: SeccompSetting | undefined): ResolvedSeccomp {
  if (setting === undefined || setting === 'default') return { profile: DEFAULT_PROFILE, source: 'default' };
  if (setting === 'unconfined') return { profile: null, source: 'unconfined' };
  try {
    if (typeof setting === 'string') {
      let text: string;
      try {
        text = readBounded(setting);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? 'no such file' : code ? `${code}` : (e as Error).message;
        throw new Error(`seccomp profile ${esc(setting)}: ${why}`);
      }
      return { profile: parseProfile(text, esc(setting)), source: esc(setting) };
    }
    parseProfile(JSON.stringify(setting), 'object');
    checkProfile(setting);
    return { profile: setting, source: 'object' };
  } catch (e) {
    throw new NsboxError((e as Error).message, { step: 'seccomp', field: 'seccomp' });
  }
}

type Filter = { filter: Buffer; flags: number };

/** The default profile's filters, by architecture and capabilities: compiled once per process, or
 *  read from dist/seccomp-default.json, which the build writes for Docker's default capabilities. */
const defaults = new Map<string, Filter>();
const PREBUILT = new URL('../seccomp-default.json', import.meta.url);
let prebuiltRead = false;

/** What the default filter depends on: the architecture, the kernel (rules with a minimum kernel), the capabilities. */
function defaultKey(names: string[]): string {
  return `${nativeArch().name}:${release()}:${[...new Set(names)].sort().join(',')}`;
}

function prebuilt(): void {
  prebuiltRead = true;
  try {
    const p = JSON.parse(readFileSync(PREBUILT, 'utf8')) as { key: string; filter: string; flags: number };
    defaults.set(p.key, { filter: Buffer.from(p.filter, 'base64'), flags: p.flags });
  } catch {
    /* not built: compile */
  }
}

/** The BPF program and install flags of a profile for a process holding `caps` (SYS_ADMIN or CAP_SYS_ADMIN). */
export function seccompFilter(profile: SeccompProfile, caps: readonly string[] = DOCKER_DEFAULT_CAPS): Filter {
  try {
    const names = caps.map((c) => c.toUpperCase()).map((c) => (c.startsWith('CAP_') ? c : `CAP_${c}`));
    const key = profile === DEFAULT_PROFILE ? defaultKey(names) : null;
    if (key !== null) {
      if (!prebuiltRead) prebuilt();
      const f = defaults.get(key);
      if (f) return f;
    }
    const policy = toPolicy(profile, nativeArch(), new Set(names));
    const f = { filter: compile(policy), flags: filterFlags(profile) };
    if (key !== null) defaults.set(key, f);
    return f;
  } catch (e) {
    throw new NsboxError((e as Error).message, { step: 'seccomp', field: 'seccomp' });
  }
}

/** What the build writes to dist/seccomp-default.json: the default filter for Docker's capabilities. */
export function prebuiltDefault(): { key: string; filter: string; flags: number } {
  const names = DOCKER_DEFAULT_CAPS.map((c) => (c.startsWith('CAP_') ? c : `CAP_${c}`));
  const { filter, flags } = seccompFilter(DEFAULT_PROFILE, names);
  return { key: defaultKey(names), filter: filter.toString('base64'), flags };
}

/** The plan step that installs it, or null when unconfined. */
export function seccompOp(s: ResolvedSeccomp, caps?: readonly string[]): Step | null {
  if (!s.profile) return null;
  const { filter, flags } = seccompFilter(s.profile, caps);
  return op.seccomp(filter, flags, s.source);
}
