// Errors that say what failed and where, in one line.
import { getSystemErrorMap } from 'node:util';
import type { Step } from './plan/steps.js';

const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Control characters (newlines and terminal escapes included) as \xNN. */
export const escapeControls = (s: string): string =>
  s.replace(CONTROLS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/**
 * What went wrong: the caller's `spec` (a field, or a CLI flag), the `host` (a missing feature or
 * permission), a plan `step` in the child, or nsbox itself (`internal`). The CLI's exit codes come
 * from it: 126/127 for a command that cannot run, 125 for the rest.
 */
export type ErrorKind = 'spec' | 'host' | 'step' | 'internal';

export interface ErrorOptions {
  kind?: ErrorKind;
  /** errno name, e.g. 'EPERM', when a syscall failed. */
  code?: string;
  /** The plan step (in words) or the spec field that failed. */
  step?: string;
  /** The spec field, when the spec is at fault. */
  field?: string;
  /** exec only: why the command could not run. */
  exec?: 'not-found' | 'not-executable';
}

/**
 * Spec fields as the CLI's flags name them: a message with `{field}` names the field in the library
 * (`capAdd: unknown capability: FOO`) and the flag on the command line (`--cap-add: ...`).
 */
export const FLAG_OF: Record<string, string> = {
  capAdd: '--cap-add',
  capDrop: '--cap-drop',
  user: '--user',
  groupAdd: '--group-add',
  'userns.uidMap': '--uidmap',
  'userns.gidMap': '--gidmap',
};

export class NsboxError extends Error {
  kind: ErrorKind;
  code?: string;
  step?: string;
  field?: string;
  exec?: 'not-found' | 'not-executable';
  /** The message with `{field}` where the field is named (see FLAG_OF). */
  template?: string;
  constructor(message: string, opts: ErrorOptions = {}) {
    // One line, whatever it quotes (a name, a path, a value from a hostile file).
    super(escapeControls(message.replaceAll('{field}', opts.field ?? '')));
    if (opts.field && message.includes('{field}')) this.template = escapeControls(message);
    this.name = 'NsboxError';
    this.kind = opts.kind ?? (opts.field ? 'spec' : opts.code ? 'host' : 'spec');
    this.code = opts.code;
    this.step = opts.step ?? opts.field;
    this.field = opts.field;
    this.exec = opts.exec;
  }
}

let errnoMap: Map<number, [string, string]> | undefined;

/** [name, message] for an errno, e.g. [EPERM, Operation not permitted]. */
export function errnoInfo(errno: number): [string, string] {
  errnoMap ??= getSystemErrorMap();
  const e = errnoMap.get(-errno);
  if (!e) return [`errno ${errno}`, `Unknown error ${errno}`];
  return [e[0], e[1].charAt(0).toUpperCase() + e[1].slice(1)];
}

/** The error for a plan step that failed in the child with errno. */
export function stepError(step: Step | undefined, errno: number): NsboxError {
  const [name, msg] = errnoInfo(errno);
  if (step?.kind === 'exec') {
    const o = { kind: 'step' as const, code: name, step: step.desc };
    if (name === 'ENOENT')
      return new NsboxError(`executable file not found in rootfs: ${step.command}`, { ...o, exec: 'not-found' });
    if (name === 'EACCES') {
      return new NsboxError(`permission denied: ${step.command} is not executable`, { ...o, exec: 'not-executable' });
    }
    if (name === 'ENOEXEC')
      return new NsboxError(`exec format error: ${step.command}`, { ...o, exec: 'not-executable' });
  }
  const desc = step?.desc ?? 'container set-up';
  return new NsboxError(`${desc}: ${step?.why?.[name] ?? msg} (${name})`, { kind: 'step', code: name, step: desc });
}

/** The message as the CLI says it: a spec field named by its flag. */
export function cliMessage(e: NsboxError): string {
  return e.template && e.field ? e.template.replaceAll('{field}', FLAG_OF[e.field] ?? e.field) : e.message;
}

/** The CLI's exit status for an error: 127 command not found, 126 not executable, else 125. */
export function exitStatusOf(e: NsboxError): number {
  return e.exec === 'not-found' ? 127 : e.exec === 'not-executable' ? 126 : 125;
}
