// Checks for untrusted input (library specs, CLI values). Each failure is an NsboxError that
// names the field, in one line: values are quoted with control characters escaped and cut short.
import { escapeControls, NsboxError } from './errors.js';

/** setTimeout's limit: a longer delay overflows and fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Linux's PATH_MAX: a longer path cannot reach a syscall. */
export const MAX_PATH = 4096;

const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

export function bad(field: string, message: string): never {
  throw new NsboxError(`${field}: ${message}`, { step: field, field });
}

/** A value for an error message: one line, at most ~60 characters. */
export function show(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  else if (typeof v === 'bigint') s = `${v}n`;
  else if (typeof v === 'function') s = 'a function';
  else if (v === null || typeof v !== 'object') s = String(v);
  else if (Array.isArray(v)) s = `an array of ${v.length}`;
  else s = 'an object';
  // JSON.stringify leaves some non-ASCII controls (U+0080-U+009F, U+2028) as they are.
  return s.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A string for a message, unquoted: control characters escaped, cut at 200 characters. */
export function esc(s: string): string {
  const cut = s.length > 200 ? `${s.slice(0, 200)}...` : s;
  return escapeControls(cut);
}

/** What a value is, for "must be X, got Y". */
export function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${show(v)}`;
  return `${typeof v} ${show(v)}`;
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);

/** A string that can become a C string: no NUL byte, at most `max` characters. */
export function cString(v: unknown, field: string, opts: { max?: number; empty?: boolean } = {}): string {
  if (typeof v !== 'string') bad(field, `must be a string, got ${kind(v)}`);
  if (!opts.empty && v === '') bad(field, 'must not be empty');
  if (v.includes('\0')) bad(field, `must not contain a NUL byte: ${show(v)}`);
  const max = opts.max ?? MAX_PATH;
  if (v.length > max) bad(field, `too long (${v.length} characters; at most ${max})`);
  return v;
}

export function optString(v: unknown, field: string, opts: { max?: number; empty?: boolean } = {}): string | undefined {
  return v === undefined ? undefined : cString(v, field, opts);
}

export function boolean(v: unknown, field: string): boolean | undefined {
  if (v !== undefined && typeof v !== 'boolean') bad(field, `must be true or false, got ${kind(v)}`);
  return v;
}

/** An integer in [min, max]. */
export function integer(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) bad(field, `must be a whole number, got ${kind(v)}`);
  if (v < min || v > max) bad(field, `must be from ${min} to ${max}, got ${v}`);
  return v;
}

/** A positive number of milliseconds a timer can wait (at most 2^31-1, about 24.8 days). */
export function millis(v: unknown, field: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    bad(field, `must be a positive number of milliseconds, got ${kind(v)}`);
  }
  if (v > MAX_TIMER_MS) bad(field, `must be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${v}`);
  return v;
}

/** An array, each element checked by `each` with its index in the field name. */
export function list<T>(v: unknown, field: string, each: (x: unknown, f: string) => T, max = 1 << 20): T[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) bad(field, `must be an array, got ${kind(v)}`);
  if (v.length > max) bad(field, `too many entries (${v.length}; at most ${max})`);
  return v.map((x, i) => each(x, `${field}[${i}]`));
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The known key a misspelt one probably meant. */
export function suggest(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  return (
    known.find((n) => n.toLowerCase() === k) ??
    known.find((n) => k.length >= 3 && (n.toLowerCase().startsWith(k) || k.startsWith(n.toLowerCase()))) ??
    known.find((n) => distance(k, n.toLowerCase()) <= 2)
  );
}

/** Refuses keys that are not in `known` (a typo would otherwise be silently ignored). */
export function knownKeys(
  obj: Record<string, unknown>,
  known: readonly string[],
  where?: string,
  hints: readonly string[] = [],
): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const name = where ? `${where}.${key}` : key;
    const hint = suggest(key, known) ?? suggest(key, hints);
    const message = `unknown field ${show(name).slice(1, -1)}${hint ? ` (did you mean ${hint}?)` : ''}`;
    throw new NsboxError(message, { step: name, field: name });
  }
}

/**
 * Every string in a spec goes to the kernel as a C string, where a NUL byte would silently cut
 * it: refuse one anywhere (keys included), naming where it is.
 */
export function noNulBytes(v: unknown, field: string, depth = 0): void {
  if (typeof v === 'string') {
    if (v.includes('\0')) bad(field, `must not contain a NUL byte: ${show(v)}`);
    return;
  }
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return;
  if (depth > 16) bad(field, 'nested too deeply');
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) noNulBytes(v[i], `${field}[${i}]`, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) return;
  for (const [k, x] of Object.entries(v)) {
    if (k.includes('\0')) bad(field, `a key must not contain a NUL byte: ${show(k)}`);
    noNulBytes(x, `${field}.${k}`, depth + 1);
  }
}
