// uid_map / gid_map ranges: parse `C:H:S`, check them the way the kernel would, and read
// subordinate id ranges from /etc/subuid and /etc/subgid.
import { readFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { fieldOf } from './fields.js';

/** Container ids container..container+size-1 are host ids host..host+size-1. */
export interface IdRange {
  container: number;
  host: number;
  size: number;
}

/** The kernel takes at most 340 lines in a map (since 4.15). */
const MAX_LINES = 340;
/** (uid_t)-1 is never a valid id. */
const ID_LIMIT = 0xffffffff;

function fail(flag: string, message: string): never {
  throw new NsboxError(message, { step: flag, field: fieldOf(flag) });
}

function toId(s: string): number | undefined {
  if (!/^\d{1,10}$/.test(s)) return undefined;
  const n = Number(s);
  return n < ID_LIMIT ? n : undefined;
}

/** `CONTAINER:HOST:SIZE` as --uidmap takes it. */
export function parseIdRange(text: string, flag: string): IdRange {
  const parts = text.split(':');
  const [c, h, s] = parts.map(toId);
  if (parts.length !== 3 || c === undefined || h === undefined || s === undefined) {
    fail(flag, `invalid {field} value: ${text} (expected CONTAINER:HOST:SIZE, e.g. 0:100000:65536)`);
  }
  return checkRange({ container: c, host: h, size: s }, flag);
}

function checkRange(r: IdRange, flag: string): IdRange {
  const label = `${r.container}:${r.host}:${r.size}`;
  for (const [k, v] of Object.entries(r)) {
    if (!Number.isInteger(v) || v < 0 || v >= ID_LIMIT)
      fail(flag, `invalid {field} ${label}: ${k} must be an id below 4294967295`);
  }
  if (r.size < 1) fail(flag, `invalid {field} ${label}: size must be at least 1`);
  if (r.container + r.size > ID_LIMIT || r.host + r.size > ID_LIMIT) {
    fail(flag, `invalid {field} ${label}: the range goes past id 4294967294`);
  }
  return r;
}

const overlap = (a: number, as: number, b: number, bs: number) => a < b + bs && b < a + as;
const show = (r: IdRange) => `${r.container}:${r.host}:${r.size}`;

/** Checks a whole map: not empty, not too long, no two ranges sharing a container or host id. */
export function checkIdMap(map: IdRange[], flag: string): IdRange[] {
  if (map.length === 0) fail(flag, '{field}: the map is empty');
  if (map.length > MAX_LINES)
    fail(flag, `{field}: at most ${MAX_LINES} ranges (the kernel's limit), got ${map.length}`);
  map.forEach((r) => checkRange(r, flag));
  for (let i = 0; i < map.length; i++) {
    for (let j = i + 1; j < map.length; j++) {
      const a = map[i],
        b = map[j];
      if (overlap(a.container, a.size, b.container, b.size)) {
        fail(flag, `{field} ${show(a)} and ${show(b)} overlap inside the container`);
      }
      if (overlap(a.host, a.size, b.host, b.size)) fail(flag, `{field} ${show(a)} and ${show(b)} overlap on the host`);
    }
  }
  return map;
}

/** The text the kernel takes in /proc/PID/uid_map. */
export function formatIdMap(map: IdRange[]): string {
  return map.map((r) => `${r.container} ${r.host} ${r.size}\n`).join('');
}

/** The host id that container id `id` is, or undefined when the map leaves it out. */
export function toHostId(map: IdRange[], id: number): number | undefined {
  const r = map.find((m) => id >= m.container && id < m.container + m.size);
  return r ? r.host + (id - r.container) : undefined;
}

export interface SubRange {
  start: number;
  count: number;
}

/**
 * The ranges /etc/subuid (or /etc/subgid) gives an owner, named by login name or by id.
 * A missing file is no range.
 */
export function readSubIds(file: string, names: (string | number)[]): SubRange[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const wanted = new Set(names.map(String));
  const out: SubRange[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (!owner || owner.startsWith('#') || !wanted.has(owner)) continue;
    const s = toId(start ?? ''),
      c = toId(count ?? '');
    if (s !== undefined && c !== undefined && c > 0) out.push({ start: s, count: c });
  }
  return out;
}
