// Resource limits (setrlimit) for the container's processes: `--ulimit name=soft[:hard]`, with a
// default for open files as systemd sets it (soft 1024 so select() stays safe, hard 524288).
import { readFileSync } from 'node:fs';
import { native } from '../native.js';
import * as op from '../plan/ops.js';
import type { Op } from '../plan/ops.js';

/** RLIMIT_* numbers (the same on x86_64 and aarch64) and their /proc/self/limits rows. */
const RLIMITS: Record<string, [number, string]> = {
  cpu: [0, 'Max cpu time'],
  fsize: [1, 'Max file size'],
  data: [2, 'Max data size'],
  stack: [3, 'Max stack size'],
  core: [4, 'Max core file size'],
  rss: [5, 'Max resident set'],
  nproc: [6, 'Max processes'],
  nofile: [7, 'Max open files'],
  memlock: [8, 'Max locked memory'],
  as: [9, 'Max address space'],
  locks: [10, 'Max file locks'],
  sigpending: [11, 'Max pending signals'],
  msgqueue: [12, 'Max msgqueue size'],
  nice: [13, 'Max nice priority'],
  rtprio: [14, 'Max realtime priority'],
  rttime: [15, 'Max realtime timeout'],
};

/** -1 is unlimited. */
export interface Rlimit {
  name: string;
  soft: number;
  hard: number;
}

export type UlimitSpec = Record<string, number | string | { soft: number | string; hard?: number | string }>;

const CAP_SYS_RESOURCE = 24;
const NOFILE_DEFAULT = { soft: 1024, hard: 524288 };

function fail(message: string): never {
  throw new Error(message);
}

/** This process's hard limits (what the container may keep or lower without CAP_SYS_RESOURCE). */
export function hostHardLimit(name: string): number {
  return native.getrlimit(RLIMITS[name][0])[1];
}

function canRaise(): boolean {
  const eff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return ((BigInt(`0x${eff}`) >> BigInt(CAP_SYS_RESOURCE)) & 1n) === 1n;
}

function limitValue(v: number | string, what: string): number {
  if (v === -1 || v === 'unlimited' || v === '-1') return -1;
  const n = typeof v === 'number' ? v : /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) fail(`${what}: invalid limit ${JSON.stringify(v)} (a number, or unlimited)`);
  return n;
}

const above = (a: number, b: number) => (a === -1 ? b !== -1 : b !== -1 && a > b);

/** Checks names and values, adds the nofile default, and refuses a hard limit nsbox cannot grant. */
export function resolveUlimits(spec: UlimitSpec | undefined): Rlimit[] {
  const out = new Map<string, Rlimit>();
  const hostNofile = hostHardLimit('nofile');
  const capped = (n: number) => (hostNofile !== -1 && n > hostNofile ? hostNofile : n);
  out.set('nofile', {
    name: 'nofile',
    soft: Math.min(NOFILE_DEFAULT.soft, capped(NOFILE_DEFAULT.hard)),
    hard: capped(NOFILE_DEFAULT.hard),
  });
  if (spec !== undefined && (typeof spec !== 'object' || spec === null || Array.isArray(spec)))
    fail('ulimits must be an object of name: limit');
  for (const [name, v] of Object.entries(spec ?? {})) {
    const what = `ulimit ${name}`;
    if (!(name in RLIMITS)) fail(`unknown ulimit: ${name} (one of ${Object.keys(RLIMITS).join(', ')})`);
    const pair = typeof v === 'object' && v !== null ? v : { soft: v, hard: v };
    const soft = limitValue(pair.soft, what);
    const hard = pair.hard === undefined ? soft : limitValue(pair.hard, what);
    if (above(soft, hard)) fail(`${what}: soft limit ${soft} is above the hard limit ${hard}`);
    const host = hostHardLimit(name);
    if (above(hard, host) && !canRaise()) {
      fail(
        `${what}: hard limit ${hard === -1 ? 'unlimited' : hard} is above this process's ${host}` +
          ' (raising it needs CAP_SYS_RESOURCE)',
      );
    }
    out.set(name, { name, soft, hard });
  }
  return [...out.values()];
}

/** `name=soft[:hard]` as docker's --ulimit takes it. */
export function parseUlimit(arg: string, into: UlimitSpec): void {
  const m = /^([a-z]+)=([^:]+)(?::(.+))?$/.exec(arg);
  if (!m) fail(`invalid --ulimit value: ${arg} (expected NAME=SOFT[:HARD])`);
  into[m[1]] = { soft: m[2], hard: m[3] ?? m[2] };
}

export function rlimitOps(limits: Rlimit[]): Op[] {
  return limits.map((l) => op.setrlimit(RLIMITS[l.name][0], l.soft, l.hard, `${l.name}=${l.soft}:${l.hard}`));
}
