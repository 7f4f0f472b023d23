// The steps of a container's plan that set who its command runs as: what an exec into it replays
// (saved in the state for the CLI's exec, kept in memory for the library's).
import type { Phase, Plan } from '../plan/builder.js';
import { saveStep, type SavedStep } from '../plan/json.js';
import type { Step } from '../plan/steps.js';

const PR_SET_PDEATHSIG = 1;
const CRED_PHASES: Phase[] = ['rlimits', 'privileged-seccomp', 'identity', 'nnp', 'seccomp'];

/** The steps of a container's plan that set who its command runs as, each with its phase. */
export function credentials(plan: Plan): { phase: Phase; step: Step }[] {
  return plan.phases
    .filter(([phase]) => CRED_PHASES.includes(phase))
    .flatMap(([phase, steps]) =>
      steps.filter((s) => !(s.kind === 'prctl' && s.option === PR_SET_PDEATHSIG)).map((step) => ({ phase, step })),
    );
}

/** The same, as the state saves them for the CLI's exec. */
export function credentialSteps(plan: Plan): SavedStep[] {
  return credentials(plan).map(({ phase, step }) => saveStep(phase, step));
}
