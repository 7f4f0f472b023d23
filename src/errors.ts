// Errors that say what failed and where, in one line.
import { getSystemErrorMap } from 'node:util';
import { OP, type Op } from './plan/ops.js';

const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Control characters (newlines and terminal escapes included) as \xNN. */
export const escapeControls = (s: string): string =>
  s.replace(CONTROLS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export class NsboxError extends Error {
  /** errno name, e.g. 'EPERM', when a syscall failed. */
  code?: string;
  /** The plan step or the field that failed. */
  step?: string;
  /** The spec field (or CLI option) at fault, e.g. 'timeoutMs' or 'limits.memory'. */
  field?: string;
  constructor(message: string, opts: { code?: string; step?: string; field?: string } = {}) {
    // One line, whatever it quotes (a name, a path, a value from a hostile file).
    super(escapeControls(message));
    this.name = 'NsboxError';
    this.code = opts.code;
    this.step = opts.step;
    this.field = opts.field;
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
export function stepError(op: Op | undefined, errno: number): NsboxError {
  const [name, msg] = errnoInfo(errno);
  if (op?.op === OP.EXEC && op.command !== undefined) {
    if (name === 'ENOENT') return new NsboxError(`executable file not found in rootfs: ${op.command}`, { code: name, step: op.desc });
    if (name === 'EACCES') return new NsboxError(`permission denied: ${op.command} is not executable`, { code: name, step: op.desc });
    if (name === 'ENOEXEC') return new NsboxError(`exec format error: ${op.command}`, { code: name, step: op.desc });
  }
  const desc = op?.desc ?? 'container set-up';
  return new NsboxError(`${desc}: ${msg} (${name})`, { code: name, step: desc });
}
