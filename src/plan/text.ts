// A plan as text, one step a line under its phase's name: what test/plan compares with the checked-in
// golden files, and what `--debug` could show. Only the words and arguments that matter to a reader.
import type { Plan } from './builder.js';
import type { Step } from './steps.js';

const MS_NAMES: [number, string][] = [
  [1, 'ro'],
  [2, 'nosuid'],
  [4, 'nodev'],
  [8, 'noexec'],
  [32, 'remount'],
  [4096, 'bind'],
  [8192, 'move'],
  [16384, 'rec'],
  [1 << 18, 'private'],
  [1 << 19, 'slave'],
  [1 << 24, 'strictatime'],
];
const ATTR_NAMES: [number, string][] = [
  [1, 'ro'],
  [2, 'nosuid'],
  [4, 'nodev'],
  [8, 'noexec'],
];
const OPEN_NAMES: [number, string][] = [
  [1, 'mkdir'],
  [2, 'mkfile'],
  [4, 'optional'],
  [8, 'nosymlinks'],
  [16, 'not-kernfs'],
  [32, 'xdev'],
];

const names = (v: number, table: [number, string][]) =>
  table
    .filter(([bit]) => v & bit)
    .map(([, n]) => n)
    .join(',');
const opt = (label: string, v: string) => (v ? ` ${label}${v}` : '');

function detail(s: Step): string {
  switch (s.kind) {
    case 'mount':
      return opt('', names(s.flags, MS_NAMES)) + opt('', s.data);
    case 'mkdir':
    case 'createFile':
      return ` ${s.mode.toString(8)}`;
    case 'setattr':
      return opt('+', names(s.set, ATTR_NAMES)) + opt('-', names(s.clear, ATTR_NAMES)) + (s.recursive ? ' rec' : '');
    case 'setattrSlot':
      return (
        ` [${s.slot}]${opt('+', names(s.set, ATTR_NAMES))}${opt('-', names(s.clear, ATTR_NAMES))}` +
        (s.recursive ? ' rec' : '') +
        (s.propagation ? ` ${PROPAGATION_NAMES[s.propagation] ?? s.propagation}` : '')
      );
    case 'fsmount':
      return ` [${s.slot}]${opt('', s.options.join(','))}${opt('', names(s.attrs, ATTR_NAMES))}`;
    case 'openAt':
      return ` [${s.slot}]${opt('', names(s.how, OPEN_NAMES))}`;
    case 'openTree':
      return ` [${s.slot}]${s.recursive ? ' rec' : ''}`;
    case 'moveMount':
      return ` [${s.slot}]`;
    case 'attach':
      return ` [${s.from}] -> [${s.to}]`;
    case 'cloneTree':
      return ` [${s.from}] -> [${s.to}]${s.recursive ? ' rec' : ''}`;
    case 'closeInherited':
      return s.keep.length ? ` but ${s.keep.join(',')}` : '';
    case 'caps':
      return (
        ` bounding=${s.bounding.toString(16)} effective=${s.effective.toString(16)}` +
        ` permitted=${s.permitted.toString(16)}` +
        ` inheritable=${s.inheritable.toString(16)} ambient=${s.ambient.toString(16)}`
      );
    case 'exec':
      return ` argv=${JSON.stringify(s.argv)} path=${s.candidates.length}`;
    case 'writeFile':
      return ` ${JSON.stringify(s.data)}`;
    case 'openBeneath':
      return ` [${s.dir}]/${s.path} -> [${s.to}]${opt('', names(s.how, OPEN_NAMES))}`;
    case 'attachHeld':
      return ` [${s.from}] -> [${s.to}] held`;
    case 'mknodAt':
      return ` [${s.dir}] ${s.mode.toString(8)} ${s.major}:${s.minor}`;
    case 'symlinkAt':
    case 'maskAt':
      return ` [${'dir' in s ? s.dir : s.tree}]`;
    case 'closeSlots':
      return ` [${s.slots.join(',')}]`;
    default:
      return '';
  }
}

/** mount_setattr's propagation values (MS_* of mount(2)). */
const PROPAGATION_NAMES: Record<number, string> = {
  [1 << 17]: 'unbindable',
  [1 << 18]: 'private',
  [1 << 19]: 'slave',
  [1 << 20]: 'shared',
};

export function stepText(s: Step): string {
  const line = `${s.desc}${detail(s)}`;
  return s.orElse?.length ? `${line}\n${s.orElse.map((f) => `    or else: ${stepText(f)}`).join('\n')}` : line;
}

export function planText(plan: Plan): string {
  const phase = ([name, steps]: [string, Step[]]) => `${name}:\n${steps.map((s) => `  ${stepText(s)}`).join('\n')}`;
  return `${plan.phases.map(phase).join('\n')}\n`;
}
