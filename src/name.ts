// A container name, checked before it names anything on disk (the state entry, names/NAME): the one
// check for the CLI, the library and the state directory.
import { NsboxError } from './errors.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

export function checkName(name: unknown): string {
  if (typeof name === 'string' && NAME_RE.test(name)) return name;
  const shown = typeof name === 'string' ? (name.length > 80 ? `${name.slice(0, 80)}...` : name) : typeof name;
  throw new NsboxError(
    `invalid container name: "${shown}" (1-64 letters, digits, _ . -, starting with a letter or digit)`,
    { step: 'name', field: 'name' },
  );
}
