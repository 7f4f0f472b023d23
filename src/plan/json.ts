// Steps saved as JSON (a container's credential steps, which exec replays): capability masks as hex
// strings, a seccomp filter as base64. What is read back is checked as hostile input, step by step.
import { NsboxError } from '../errors.js';
import type { Phase } from './builder.js';
import type { Step } from './steps.js';

export type SavedStep = { phase: Phase; step: Record<string, unknown> };

const CAPS = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const;

export function saveStep(phase: Phase, s: Step): SavedStep {
  const out: Record<string, unknown> = { ...s };
  if (s.kind === 'caps') for (const k of CAPS) out[k] = `0x${s[k].toString(16)}`;
  if (s.kind === 'seccomp') out.filter = s.filter.toString('base64');
  return { phase, step: out };
}

/** Phases and kinds that a saved credential step may have: anything else in a state file is refused. */
const ALLOWED: Partial<Record<Phase, ReadonlySet<string>>> = {
  rlimits: new Set(['setrlimit', 'umask']),
  'privileged-seccomp': new Set(['seccomp']),
  identity: new Set(['setgroups', 'setresgid', 'setresuid', 'caps', 'prctl']),
  nnp: new Set(['prctl']),
  seccomp: new Set(['seccomp']),
};

export function loadStep(saved: SavedStep): { phase: Phase; step: Step } {
  const s = saved?.step ?? {};
  const ok = ALLOWED[saved?.phase]?.has(String(s.kind)) && typeof s.desc === 'string';
  if (!ok)
    throw new NsboxError(`state: unexpected saved step ${JSON.stringify(s.kind)}`, { kind: 'internal', step: 'state' });
  const out: Record<string, unknown> = { ...s };
  if (s.kind === 'caps') for (const k of CAPS) out[k] = BigInt(String(s[k]));
  if (s.kind === 'seccomp') out.filter = Buffer.from(String(s.filter), 'base64');
  return { phase: saved.phase, step: out as Step };
}
