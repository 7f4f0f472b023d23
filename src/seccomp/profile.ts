// Seccomp profiles in the Docker / OCI JSON format, checked and turned into a Policy for one
// architecture and one capability set (Docker's `includes`/`excludes` on caps, arches, minKernel).
import { release } from 'node:os';
import { ARG32, type Arch } from './arch.js';
import { EPERM, RET, type ArgCheck, type CmpOp, type Policy, type Rule } from './compile.js';

export interface ProfileArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface ProfileFilter {
  arches?: string[] | null;
  caps?: string[] | null;
  minKernel?: string | null;
}

export interface ProfileSyscall {
  names?: string[] | null;
  /** The old Docker format: one name. */
  name?: string;
  action: string;
  errnoRet?: number | null;
  args?: ProfileArg[] | null;
  includes?: ProfileFilter | null;
  excludes?: ProfileFilter | null;
  comment?: string;
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number | null;
  architectures?: string[] | null;
  archMap?: { architecture: string; subArchitectures?: string[] | null }[] | null;
  flags?: string[] | null;
  syscalls?: ProfileSyscall[] | null;
  listenerPath?: string;
}

const OPS: Record<string, CmpOp> = {
  SCMP_CMP_EQ: 'eq',
  SCMP_CMP_NE: 'ne',
  SCMP_CMP_LT: 'lt',
  SCMP_CMP_LE: 'le',
  SCMP_CMP_GT: 'gt',
  SCMP_CMP_GE: 'ge',
  SCMP_CMP_MASKED_EQ: 'masked_eq',
};

/** SECCOMP_FILTER_FLAG_* the kernel takes at install time. */
export const FILTER_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

class ProfileError extends Error {}

function bad(where: string, message: string): never {
  throw new ProfileError(`${where}: ${message}`);
}

function errnoOf(where: string, v: number | null | undefined): number {
  if (v === undefined || v === null) return EPERM;
  if (!Number.isInteger(v) || v < 0 || v > 4095) bad(where, `errnoRet must be an errno number, got ${v}`);
  return v;
}

/** SECCOMP_RET_* for a profile action name. */
function actionOf(where: string, name: unknown, errnoRet: number | null | undefined): number {
  switch (name) {
    case 'SCMP_ACT_ALLOW':
      return RET.ALLOW;
    case 'SCMP_ACT_ERRNO':
      return RET.ERRNO | errnoOf(where, errnoRet);
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return RET.TRAP;
    case 'SCMP_ACT_LOG':
      return RET.LOG;
    case 'SCMP_ACT_TRACE':
      return RET.TRACE | errnoOf(where, errnoRet);
    case 'SCMP_ACT_NOTIFY':
      bad(where, 'SCMP_ACT_NOTIFY is not supported (nsbox has no seccomp agent)');
  }
  bad(where, `unknown action ${JSON.stringify(name)}`);
}

function value(where: string, v: unknown): bigint {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    bad(where, `must be a non-negative integer below 2^53, got ${JSON.stringify(v)}`);
  return BigInt(v);
}

function kernelAtLeast(min: string): boolean {
  const want = min.split('.').map(Number);
  const have = release()
    .split(/[.-]/)
    .map((x) => parseInt(x, 10));
  for (let i = 0; i < want.length; i++) {
    const h = have[i] || 0,
      w = want[i] || 0;
    if (h !== w) return h > w;
  }
  return true;
}

function matches(f: ProfileFilter, arch: Arch, caps: Set<string>, want: 'all' | 'any'): boolean {
  const tests: boolean[] = [];
  if (f.arches?.length) tests.push(f.arches.some((a) => arch.aliases.includes(a)));
  if (f.caps?.length) {
    const has = f.caps.map((c) =>
      caps.has(c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`),
    );
    tests.push(want === 'all' ? has.every(Boolean) : has.some(Boolean));
  }
  if (f.minKernel) tests.push(kernelAtLeast(f.minKernel));
  if (tests.length === 0) return want === 'all';
  return want === 'all' ? tests.every(Boolean) : tests.some(Boolean);
}

/** Checks a parsed profile; throws with the field at fault. */
export function checkProfile(prof: unknown): asserts prof is SeccompProfile {
  if (!prof || typeof prof !== 'object' || Array.isArray(prof)) bad('profile', 'must be a JSON object');
  const p = prof as SeccompProfile;
  actionOf('defaultAction', p.defaultAction, p.defaultErrnoRet);
  for (const f of p.flags ?? []) if (!(f in FILTER_FLAGS)) bad('flags', `unknown flag ${JSON.stringify(f)}`);
  if (p.listenerPath) bad('listenerPath', 'seccomp notify agents are not supported');
  if (p.syscalls !== undefined && p.syscalls !== null && !Array.isArray(p.syscalls))
    bad('syscalls', 'must be an array');
  (p.syscalls ?? []).forEach((s, i) => {
    const where = `syscalls[${i}]`;
    if (!s || typeof s !== 'object') bad(where, 'must be an object');
    const names = s.names ?? (s.name ? [s.name] : []);
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && n !== '')) {
      bad(`${where}.names`, 'must list syscall names');
    }
    actionOf(`${where}.action`, s.action, s.errnoRet);
    (s.args ?? []).forEach((a, j) => {
      const w = `${where}.args[${j}]`;
      if (!Number.isInteger(a?.index) || a.index < 0 || a.index > 5)
        bad(`${w}.index`, `must be 0 to 5, got ${JSON.stringify(a?.index)}`);
      if (!(a.op in OPS)) bad(`${w}.op`, `unknown operator ${JSON.stringify(a.op)}`);
      value(`${w}.value`, a.value);
      if (a.op === 'SCMP_CMP_MASKED_EQ' || a.valueTwo !== undefined) value(`${w}.valueTwo`, a.valueTwo ?? 0);
    });
  });
}

/** Parses and checks profile text; errors name the field. */
export function parseProfile(text: string, source: string): SeccompProfile {
  let prof: unknown;
  try {
    prof = JSON.parse(text);
  } catch (e) {
    throw new Error(`seccomp profile ${source}: not JSON: ${(e as Error).message}`);
  }
  try {
    checkProfile(prof);
  } catch (e) {
    if (e instanceof ProfileError) throw new Error(`seccomp profile ${source}: ${e.message}`);
    throw e;
  }
  return prof;
}

export function filterFlags(prof: SeccompProfile): number {
  return (prof.flags ?? []).reduce((f, name) => f | FILTER_FLAGS[name], 0);
}

/**
 * The rules that apply on `arch` for a process holding `caps`: names the table does not know are
 * skipped (other architectures' syscalls), as runc and libseccomp do.
 */
export function toPolicy(prof: SeccompProfile, arch: Arch, caps: Set<string>): Policy {
  const defaultAction = actionOf('defaultAction', prof.defaultAction, prof.defaultErrnoRet) >>> 0;
  const syscalls = new Map<number, Rule[]>();
  for (const s of prof.syscalls ?? []) {
    if (s.includes && !matches(s.includes, arch, caps, 'all')) continue;
    if (s.excludes && matches(s.excludes, arch, caps, 'any')) continue;
    const action = actionOf('action', s.action, s.errnoRet) >>> 0; // EPERM unless given, as runc does
    for (const name of s.names ?? [s.name!]) {
      const nr = arch.byName.get(name);
      if (nr === undefined) continue;
      const args: ArgCheck[] = (s.args ?? []).map((a) => ({
        index: a.index,
        op: OPS[a.op],
        value: BigInt(a.value),
        valueTwo: BigInt(a.valueTwo ?? 0),
        low32: ARG32[name]?.includes(a.index),
      }));
      const list = syscalls.get(nr) ?? [];
      list.push({ action, args });
      syscalls.set(nr, list);
    }
  }
  // Rules with argument checks first (the more specific), then the first unconditional one.
  for (const [nr, list] of syscalls) {
    const specific = list.filter((r) => r.args.length > 0);
    const always = list.find((r) => r.args.length === 0);
    const rules = always ? [...specific, always] : specific;
    if (rules.every((r) => r.action === defaultAction)) syscalls.delete(nr);
    else syscalls.set(nr, rules);
  }
  return { arch, defaultAction, badArchAction: RET.KILL_PROCESS, syscalls };
}
