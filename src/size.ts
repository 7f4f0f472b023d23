// The one size grammar, for every option that takes one (memory limits, tmpfs sizes, log sizes):
// bytes, or a number with a binary unit — 1048576, '64m', '1.5g', '512KiB', '2t'.

const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const SIZE_RE = /^(\d+(?:\.\d+)?)(?:([kmgt])(?:i?b)?|(b))?$/i;

/** Bytes for a size, or null when it is not one (or not a whole number of bytes). */
export function parseBytes(v: number | string): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  const m = typeof v === 'string' ? SIZE_RE.exec(v) : null;
  if (!m) return null;
  const bytes = Number(m[1]) * UNITS[(m[2] ?? m[3] ?? 'b').toLowerCase()];
  return Number.isSafeInteger(bytes) ? bytes : null;
}

export const SIZE_HELP = 'a size such as 64m; units b, k, m, g, t';
