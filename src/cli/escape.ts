// What a container controls (its command lines, paths, names) is shown escaped: a process can
// set its argv to terminal escapes (a window title, OSC 52 clipboard writes, clear screen).
// Control characters become \xNN as podman and ps show them; bidi and line-separator
// characters, which reorder or split what is shown, become \u{NNNN}.

const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** What JSON.stringify leaves as it is (it escapes C0 in strings; outside them C0 is layout). */
const UNSAFE_IN_JSON = /[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, '0');

/** The text with every control character written out, safe to print to a terminal. */
export function escapeText(s: string): string {
  return String(s).replace(UNSAFE, (c) => (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u{${hex(c, 4)}}`));
}

/** JSON text with DEL, C1 and bidi characters escaped too (JSON.stringify escapes only C0). */
export function safeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`);
}
