// Fuzz over every field of the library's spec (spawn and run): wrong types, empty, huge, negative,
// non-finite, unicode, NUL bytes, unknown and misspelt fields. Each must be refused before anything
// is made, with an NsboxError that names the field, or (for the few valid values) run to its end;
// nothing may be left behind (process, cgroup, mount, fd).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Container, NsboxError, run, spawn } from '../../dist/index.js';
import { ROOTFS, snapshot } from '../helpers.js';
import { counts, leftovers } from './harness.js';

const FIELDS = [
  'rootfs',
  'command',
  'env',
  'cwd',
  'name',
  'id',
  'hostname',
  'readOnly',
  'namespaces',
  'stdio',
  'limits',
  'userns',
  'user',
  'groupAdd',
  'capAdd',
  'capDrop',
  'noNewPrivileges',
  'privileged',
  'seccomp',
  'mounts',
  'devices',
  'ulimits',
  'maskPaths',
  'timeoutMs',
  'cpuTimeLimitMs',
  'signal',
  'input',
  'maxOutputBytes',
  'encoding',
];
/** Fields only run() takes. */
const RUN_ONLY = new Set(['input', 'maxOutputBytes', 'encoding']);

const CORE_UNLIMITED = /^Max core file size\s+\S+\s+unlimited/m.test(readFileSync('/proc/self/limits', 'utf8'));

/** Valid values of each limit (with memory: '64m'), on a host with at least 2 CPUs. */
const LIMIT_OK: Record<string, string[]> = {
  memory: ['undefinedValue', 'beyondTimer'],
  memorySwap: ['undefinedValue', 'negative', 'beyondTimer'],
  cpus: ['undefinedValue', 'fraction'],
  cpuShares: ['undefinedValue', 'number'],
  cpuWeight: ['undefinedValue', 'number'],
  cpusetCpus: ['undefinedValue'],
  pids: ['undefinedValue', 'number'],
};

const VALUES: Record<string, unknown> = {
  undefinedValue: undefined,
  nullValue: null,
  zero: 0,
  number: 42,
  negative: -1,
  fraction: 1.5,
  nan: NaN,
  infinity: Infinity,
  huge: 1e300,
  beyondTimer: 2 ** 31,
  bigint: 10n,
  true: true,
  false: false,
  empty: '',
  word: 'abc',
  absolute: '/',
  hugeString: 'x'.repeat(100_000),
  nul: 'a\0b',
  absoluteNul: '/tmp\0/x',
  unicode: 'é∂😀',
  newline: 'a\nb',
  object: {},
  objectNul: { a: 'b\0c' },
  array: [],
  arrayNumber: [42],
  arrayNul: ['true\0x'],
  arrayObject: [{}],
  func: () => 1,
  symbol: Symbol('x'),
};

/** (field, value) pairs that are valid: the sandbox must start and end. */
const VALID: Record<string, string[]> = {
  env: ['undefinedValue', 'object'],
  cwd: ['undefinedValue', 'absolute'],
  name: ['undefinedValue', 'word'],
  id: ['undefinedValue'],
  hostname: ['undefinedValue', 'word'],
  readOnly: ['undefinedValue', 'true', 'false'],
  namespaces: ['undefinedValue', 'object'],
  stdio: ['undefinedValue', 'zero'],
  limits: ['undefinedValue', 'object'],
  userns: ['undefinedValue', 'true', 'false', 'object'],
  user: ['undefinedValue', 'zero', 'number', 'beyondTimer'],
  groupAdd: ['undefinedValue', 'array', 'arrayNumber'],
  capAdd: ['undefinedValue', 'array'],
  capDrop: ['undefinedValue', 'array'],
  noNewPrivileges: ['undefinedValue', 'true', 'false'],
  privileged: ['undefinedValue', 'true', 'false'],
  seccomp: ['undefinedValue'],
  mounts: ['undefinedValue', 'array'],
  devices: ['undefinedValue', 'array'],
  ulimits: ['undefinedValue', 'object'],
  maskPaths: ['undefinedValue', 'true', 'false'],
  timeoutMs: ['undefinedValue', 'number', 'fraction'],
  cpuTimeLimitMs: ['undefinedValue', 'number', 'fraction'],
  signal: ['undefinedValue'],
  input: ['undefinedValue', 'empty', 'word', 'absolute', 'hugeString', 'nul', 'absoluteNul', 'unicode', 'newline'],
  maxOutputBytes: ['undefinedValue', 'zero', 'number', 'beyondTimer'],
  encoding: ['undefinedValue', 'buffer'],
};

/** Fields inside fields: [path, the object around it, the valid values]. */
type Around = (v: unknown) => Record<string, unknown>;
const BOOLEAN = ['undefinedValue', 'true', 'false'];
const tmpfs =
  (k: string): Around =>
  (v) => ({ mounts: [{ type: 'tmpfs', target: '/mnt', [k]: v }] });
const NESTED: [string, Around, string[]][] = [
  ...['memory', 'memorySwap', 'cpus', 'cpuShares', 'cpuWeight', 'cpusetCpus', 'pids'].map(
    (k): [string, Around, string[]] => [
      `limits.${k}`,
      (v) => ({ limits: { memory: '64m', [k]: v } }),
      LIMIT_OK[k] ?? [],
    ],
  ),
  ...['pid', 'net', 'ipc', 'uts', 'cgroup'].map((k): [string, Around, string[]] => [
    `namespaces.${k}`,
    (v) => ({ namespaces: { [k]: v } }),
    BOOLEAN,
  ]),
  ['userns.uidMap', (v) => ({ userns: { uidMap: v } }), ['undefinedValue']],
  ['userns.gidMap', (v) => ({ userns: { gidMap: v } }), ['undefinedValue']],
  ['ulimits.nproc', (v) => ({ ulimits: { nproc: v } }), ['zero', 'number']],
  // -1 is unlimited: taken where this process's own hard limit is unlimited.
  [
    'ulimits.core',
    (v) => ({ ulimits: { core: { soft: 0, hard: v } } }),
    ['undefinedValue', 'zero', 'number', 'beyondTimer', ...(CORE_UNLIMITED ? ['negative'] : [])],
  ],
  ['mounts[0].target', (v) => ({ mounts: [{ type: 'tmpfs', target: v }] }), []],
  ['mounts[0].size', tmpfs('size'), ['undefinedValue', 'number', 'beyondTimer']],
  ['mounts[0].mode', tmpfs('mode'), ['undefinedValue', 'zero', 'number']],
  ['mounts[0].readOnly', tmpfs('readOnly'), BOOLEAN],
  ['mounts[0].source', (v) => ({ mounts: [{ type: 'bind', target: '/mnt', source: v }] }), ['absolute']],
  ['devices[0].host', (v) => ({ devices: [{ host: v }] }), []],
  ['devices[0].access', (v) => ({ devices: [{ host: '/dev/null', access: v }] }), ['undefinedValue']],
  ['devices[0].path', (v) => ({ devices: [{ host: '/dev/null', path: v }] }), ['undefinedValue']],
];

type Outcome = 'error' | 'ok' | 'wrong-field' | 'not-nsbox-error' | 'start-failed' | 'hang';

interface Case {
  field: string;
  value: string;
  outcome: Outcome;
  detail: string;
}

const names = (e: NsboxError) => [e.field, e.step].filter(Boolean) as string[];
/** The error names `field`, a part of it (limits.memory, command[0]) or what holds it (mounts for
 *  mounts[0].target; uidmap, the CLI's word, for userns.uidMap). */
const namesField = (e: NsboxError, field: string) =>
  names(e).some(
    (n) =>
      n === field ||
      n.startsWith(`${field}.`) ||
      n.startsWith(`${field}[`) ||
      field.startsWith(`${n}.`) ||
      field.startsWith(`${n}[`) ||
      n.toLowerCase() === field.split('.').pop()!.toLowerCase(),
  ) ||
  (field === 'rootfs' && /rootfs/.test(e.message));

async function attempt(
  field: string,
  value: unknown,
  around?: (v: unknown) => Record<string, unknown>,
): Promise<[Outcome, string]> {
  const spec: Record<string, unknown> = {
    rootfs: ROOTFS,
    command: ['true'],
    ...(around ? around(value) : { [field]: value }),
  };
  // Output ignored: pipes nobody reads would stay open (as child_process's do).
  if (!RUN_ONLY.has(field) && field !== 'stdio') spec.stdio = 'ignore';
  try {
    let done: Promise<unknown>;
    if (RUN_ONLY.has(field)) done = run(spec as never);
    else {
      const sb = spawn(spec as never);
      sb.stdout?.resume();
      sb.stderr?.resume();
      done = Promise.all([
        sb.exited,
        ...[sb.stdout, sb.stderr].map((s) => s && new Promise((r) => s.once('close', r))),
      ]);
    }
    const timeout = new Promise<'hang'>((r) => setTimeout(() => r('hang'), 20_000).unref());
    const r = await Promise.race([done, timeout]);
    return r === 'hang' ? ['hang', ''] : ['ok', ''];
  } catch (e) {
    if (!(e instanceof NsboxError)) return ['not-nsbox-error', `${(e as Error)?.name}: ${(e as Error)?.message}`];
    if (namesField(e, field)) return ['error', e.message];
    // Refused at a step in the child: something was made, so not "before anything is created".
    if (e.step && !e.field) return ['start-failed', `${e.step}: ${e.message}`];
    return ['wrong-field', `${names(e).join(',')}: ${e.message}`];
  }
}

describe('library spec fuzz', () => {
  let before: ReturnType<typeof snapshot>;
  const fds = () => readdirSync('/proc/self/fd').length;
  let fdsBefore = 0;
  const all: Case[] = [];

  beforeAll(() => {
    before = snapshot();
    fdsBefore = fds();
  });

  it('every field, every kind of value', async () => {
    for (const field of FIELDS) {
      for (const [name, value] of Object.entries(VALUES)) {
        if (field === 'encoding' && name === 'word') continue;
        const [outcome, detail] = await attempt(field, value);
        all.push({ field, value: name, outcome, detail });
      }
    }
    const [outcome, detail] = await attempt('encoding', 'buffer');
    all.push({ field: 'encoding', value: 'buffer', outcome, detail });
    for (const [path, around, valid] of NESTED) {
      VALID[path] = valid;
      for (const [name, value] of Object.entries(VALUES)) {
        const [o, d] = await attempt(path, value, around);
        all.push({ field: path, value: name, outcome: o, detail: d });
      }
    }
    console.log(`fuzz spec: ${JSON.stringify(counts(all))}`);
    const wrongOnes = all
      .filter((c) => (VALID[c.field]?.includes(c.value) ? c.outcome !== 'ok' : c.outcome !== 'error'))
      .map((c) => `${c.field}=${c.value}: ${c.outcome} ${c.detail.slice(0, 200)}`);
    expect(wrongOnes).toEqual([]);
    // One line each.
    expect(all.filter((c) => c.outcome === 'error' && /[\n\r\u001b]/.test(c.detail)).map((c) => c.detail)).toEqual([]);
  }, 300_000);

  it('unknown and misspelt fields are named', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ timeout: 5 }, /^unknown field timeout \(did you mean timeoutMs\?\)$/],
      [{ readonly: true }, /did you mean readOnly/],
      [{ cmd: ['true'] }, /^unknown field cmd/],
      [{ namespaces: { mnt: false } }, /unknown namespace: mnt/],
      [{ limits: { memroy: '64m' } }, /unknown limit: memroy/],
      [{ userns: { uidmap: [] } }, /unknown field userns.uidmap \(did you mean uidMap\?\)/],
      [
        { mounts: [{ type: 'tmpfs', target: '/mnt', sise: '1m' }] },
        /unknown field mounts\[0\]\.sise \(did you mean size\?\)/,
      ],
      [
        { devices: [{ host: '/dev/null', paht: '/dev/x' }] },
        /unknown field devices\[0\]\.paht \(did you mean path\?\)/,
      ],
    ];
    for (const [extra, msg] of cases) {
      let err: unknown;
      try {
        spawn({ rootfs: ROOTFS, command: ['true'], ...extra } as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NsboxError);
      expect((err as Error).message).toMatch(msg);
    }
  });

  it('the cases the review found', async () => {
    const refused = async (spec: unknown, field: string, msg: RegExp) => {
      let err: unknown;
      try {
        await run(spec as never);
      } catch (e) {
        err = e;
      }
      expect(
        err,
        JSON.stringify(spec, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
      ).toBeInstanceOf(NsboxError);
      expect((err as NsboxError).field).toBe(field);
      expect((err as Error).message).toMatch(msg);
    };
    const base = { rootfs: ROOTFS, command: ['true'] };
    await refused({ ...base, input: 42 }, 'input', /input: must be a string, a Buffer or a readable stream/);
    await refused({ ...base, signal: {} }, 'signal', /signal: must be an AbortSignal/);
    await refused({ ...base, encoding: 'bogus' }, 'encoding', /encoding: must be/);
    await refused(null, 'spec', /spec: must be an object/);
    await refused({ ...base, cwd: 5 }, 'cwd', /cwd: must be a string/);
    await refused({ ...base, hostname: 5 }, 'hostname', /hostname: must be a string/);
    await refused({ ...base, timeoutMs: 1e300 }, 'timeoutMs', /timeoutMs: must be at most 2147483647 ms/);
    await refused({ ...base, command: ['echo', 'a\0b'] }, 'command[1]', /NUL/);
    await refused({ ...base, cwd: '/tmp\0/etc' }, 'cwd', /NUL/);
    await refused({ ...base, env: { A: 'b\0c' } }, 'env.A', /NUL/);
    await refused({ ...base, mounts: [{ type: 'tmpfs', target: '/mnt\0x' }] }, 'mounts[0].target', /NUL/);
    // A timeout as long as a timer may wait is taken (and the sandbox is not killed after 1 ms).
    const r = await run({ ...base, command: ['sh', '-c', 'sleep 0.2'], timeoutMs: 2 ** 31 - 1 });
    expect(r.status).toBe('ok');
  });

  it('a throw after the clone kills and reaps the container: nothing runs on without a handle', async () => {
    const snap = snapshot();
    let started = 0;
    const part = {
      started(pid: number) {
        started = pid;
        throw new Error('a part failed');
      },
    };
    expect(() => new Container({ rootfs: ROOTFS, command: ['sleep', '1000'], limits: {} }, [part])).toThrow(
      'a part failed',
    );
    expect(started).toBeGreaterThan(0);
    expect(await leftovers(snap)).toEqual([]);
    // Reaped (its pidfd watched), not left a zombie.
    for (let i = 0; i < 100 && existsSync(`/proc/${started}`); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(`/proc/${started}`)).toBe(false);
  });

  it('left nothing behind', async () => {
    expect(await leftovers(before)).toEqual([]);
    expect(fds()).toBe(fdsBefore);
  }, 30_000);
});
