// Fuzz over every flag of run, exec, ps, logs, kill, stop, rm, stats and inspect: bad values
// (empty, huge, negative, non-numeric, unicode, control characters), repeated and conflicting
// ones. Each must end in one line `nsbox: ...` and exit 125, no stack trace, within a deadline,
// leaving nothing behind; the few valid ones must succeed. (A NUL cannot be passed in argv at all.)
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsbox, ROOTFS, snapshot } from '../helpers.js';
import { BAD_NAMES, counts, leftovers, runAll, VALUES, wrong, type Invocation, type Result } from './harness.js';

const TARGET = 'fuzz-target';
const NONE = 'fuzz-no-such-container';

/** What follows the options: a running container where the command needs one, else a missing one. */
const COMMANDS: Record<string, string[]> = {
  run: [ROOTFS, 'true'],
  exec: [TARGET, 'true'],
  ps: [],
  logs: [TARGET],
  stats: ['--no-stream', TARGET],
  inspect: [TARGET],
  kill: [NONE],
  stop: [NONE],
  rm: [NONE],
};

/** A valid value per flag (where one is cheap to give): alone it must work, given twice it is refused
 *  unless the flag is repeatable. */
const VALID: Record<string, string> = {
  name: 'fuzz-valid-name',
  hostname: 'fuzzhost',
  env: 'A=1',
  workdir: '/',
  user: '0',
  'group-add': '0',
  'cap-add': 'CHOWN',
  'cap-drop': 'CHOWN',
  memory: '64m',
  cpus: '1',
  'cpu-shares': '512',
  'cpu-weight': '100',
  'cpuset-cpus': '0',
  'pids-limit': '100',
  mount: 'type=tmpfs,dst=/mnt',
  tmpfs: '/mnt',
  ulimit: 'nofile=100',
  seccomp: 'default',
  format: 'json',
  tail: '1',
  signal: 'TERM',
  time: '1',
};
/** Repeatable flags where the same value twice is fine (a mount target twice is a conflict). */
const REPEATABLE = new Set(['env', 'group-add', 'cap-add', 'cap-drop', 'ulimit']);
/** Commands where a valid option alone succeeds (on kill, stop and rm it finds no such container). */
const VALID_RUNS = new Set(['run', 'exec', 'ps', 'logs', 'stats', 'inspect', 'kill', 'stop', 'rm']);

const CONFLICTS: [string, string[]][] = [
  ['run cpu-shares+cpu-weight', ['run', '--cpu-shares', '512', '--cpu-weight', '100', ROOTFS, 'true']],
  ['run memory-swap without memory', ['run', '--memory-swap', '128m', ROOTFS, 'true']],
  ['run memory-swap below memory', ['run', '-m', '128m', '--memory-swap', '64m', ROOTFS, 'true']],
  ['run tmpfs twice on one target', ['run', '--tmpfs', '/mnt', '--tmpfs', '/mnt', ROOTFS, 'true']],
  ['run tmpfs over /proc', ['run', '--tmpfs', '/proc', ROOTFS, 'true']],
  ['run uidmap without userns', ['run', '--uidmap', '0:1000000:65536', '--userns=false', ROOTFS, 'true']],
  ['run name twice', ['run', '--name', 'a1', '--name', 'a2', ROOTFS, 'true']],
  ['run seccomp twice', ['run', '--seccomp', 'default', '--seccomp', 'unconfined', ROOTFS, 'true']],
  ['run seccomp a directory', ['run', '--seccomp', '/', ROOTFS, 'true']],
  ['run seccomp /dev/zero', ['run', '--seccomp', '/dev/zero', ROOTFS, 'true']],
  ['run -t without a terminal, detached and interactive', ['run', '-dit', '--rm', ROOTFS, 'true']],
  ['run no rootfs', ['run']],
  ['run no command', ['run', ROOTFS]],
  ['run rootfs a file', ['run', '/etc/passwd', 'true']],
  ['run unknown option', ['run', '--bogus', ROOTFS, 'true']],
  ['run unknown short option', ['run', '-Z', ROOTFS, 'true']],
  ['exec target without a command', ['exec', '--target', '1']],
  ['exec namespace flag without target', ['exec', '--net', TARGET, 'true']],
  ['kill signal 0', ['kill', '-s', '0', NONE]],
  ['stop no name', ['stop']],
  ['rm no name', ['rm']],
  ['logs two names', ['logs', TARGET, TARGET]],
];

/** Every option a command's --help names; those that take a value say so when given none. */
async function options(cmd: string): Promise<{ flag: string; value: boolean }[]> {
  const help = (await nsbox([cmd, '--help'])).stdout;
  const flags = new Set(help.match(/(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])/g) ?? []);
  for (const f of ['--help', '-h', '--version', '-V']) flags.delete(f);
  const probed = await runAll([...flags].map((f) => ({ label: f, argv: [cmd, f] })));
  return probed.map((r) => ({ flag: r.label, value: /needs a value/.test(r.stderr) }));
}

function longName(cmd: string, flag: string, all: { flag: string }[]): string {
  if (flag.startsWith('--')) return flag.slice(2);
  // Short flags: the long one documented next to it (e.g. -m, --memory).
  const known: Record<string, string> = {
    '-e': 'env',
    '-w': 'workdir',
    '-d': 'detach',
    '-t': cmd === 'stop' ? 'time' : 'tty',
    '-i': 'interactive',
    '-u': 'user',
    '-m': 'memory',
    '-v': 'volume',
    '-a': 'all',
    '-q': 'quiet',
    '-f': cmd === 'logs' ? 'follow' : 'force',
    '-n': 'tail',
    '-s': 'signal',
  };
  return known[flag] ?? all.find((a) => a.flag === flag)?.flag ?? flag;
}

function invocations(cmd: string, opts: { flag: string; value: boolean }[]): Invocation[] {
  const rest = COMMANDS[cmd];
  const list: Invocation[] = [];
  for (const { flag, value } of opts) {
    const long = longName(cmd, flag, opts);
    // A short flag with a long twin: the values go through the long one; here only a bundled value.
    const twin = flag.length === 2 && opts.some((o) => o.flag === `--${long}`);
    if (!value) {
      if (twin) continue;
      list.push({ label: `${cmd} ${flag}=x`, argv: [cmd, `${flag.startsWith('--') ? flag : `--${long}`}=x`, ...rest] });
      // A flag repeated is the flag (detached runs would outlive the test).
      if ((cmd === 'run' || cmd === 'ps') && long !== 'detach') {
        list.push({ label: `${cmd} ${flag} twice`, argv: [cmd, flag, flag, ...rest], valid: true });
      }
      continue;
    }
    if (twin) {
      const valid = VALID_RUNS.has(cmd) && validJunk(cmd, long, 'word');
      list.push({ label: `${cmd} ${flag}word (bundled)`, argv: [cmd, `${flag}abc`, ...rest], valid });
      continue;
    }
    for (const [name, v] of Object.entries(VALUES)) {
      const valid = VALID_RUNS.has(cmd) && validJunk(cmd, long, name);
      list.push({ label: `${cmd} ${flag} ${name}`, argv: [cmd, flag, v, ...rest], valid });
    }
    const ok = VALID[long];
    if (ok === undefined) continue;
    if (VALID_RUNS.has(cmd)) list.push({ label: `${cmd} ${flag} valid`, argv: [cmd, flag, ok, ...rest], valid: true });
    const twice = [cmd, flag, ok, flag, ok, ...rest];
    list.push({ label: `${cmd} ${flag} twice`, argv: twice, valid: VALID_RUNS.has(cmd) && REPEATABLE.has(long) });
  }
  return list;
}

/** The fuzz values that happen to be valid for a flag (`--hostname abc` is a fine hostname). */
function validJunk(_cmd: string, long: string, value: string): boolean {
  const names = ['zero', 'fraction', 'nan', 'exponent', 'hex', 'hugeNumber', 'word'];
  const ok: Record<string, string[]> = {
    name: names,
    hostname: names,
    'network-alias': names,
    user: ['zero'],
    'group-add': ['zero'],
    'cpuset-cpus': ['zero'],
    'cpuset-mems': ['zero'],
    'memory-reservation': ['zero'], // no reservation, as podman takes 0
    'memory-swappiness': ['zero'],
    cpus: ['fraction'],
    tail: ['zero'],
    time: ['zero'],
    // Unix seconds, as docker takes them.
    since: ['zero', 'fraction'],
    until: ['zero', 'fraction'],
  };
  // -e NAME passes this process's NAME, or nothing when it is unset (docker's way): any name is one.
  if (long === 'env') return value !== 'empty' && value !== 'equals';
  return (ok[long] ?? []).includes(value);
}

describe('CLI fuzz', () => {
  let before: ReturnType<typeof snapshot>;
  const all: Result[] = [];

  beforeAll(async () => {
    before = snapshot();
    const r = await nsbox(['run', '-d', '--name', TARGET, ROOTFS, 'sleep', '1000']);
    expect(r.code, r.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await nsbox(['rm', '-f', TARGET]);
  });

  for (const cmd of Object.keys(COMMANDS)) {
    it(`${cmd}: every flag, bad values`, async () => {
      const results = await runAll(invocations(cmd, await options(cmd)));
      all.push(...results);
      console.log(`fuzz cli ${cmd}: ${JSON.stringify(counts(results))}`);
      const bad = wrong(results).map((r) => `${r.label}: ${r.outcome} (exit ${r.code}) ${r.stderr.slice(0, 300)}`);
      expect(bad).toEqual([]);
    }, 300_000);
  }

  it('conflicting and missing arguments', async () => {
    const results = await runAll(CONFLICTS.map(([label, argv]) => ({ label, argv })));
    all.push(...results);
    const bad = wrong(results).map((r) => `${r.label}: ${r.outcome} (exit ${r.code}) ${r.stderr.slice(0, 300)}`);
    expect(bad).toEqual([]);
  }, 120_000);

  it('container names that cannot be', async () => {
    const list: Invocation[] = [];
    for (const [name, v] of Object.entries(BAD_NAMES)) {
      list.push({ label: `run --name ${name}`, argv: ['run', '--name', v, ROOTFS, 'true'] });
      for (const cmd of ['inspect', 'logs', 'stats', 'exec', 'kill', 'stop', 'rm']) {
        // '-' reads as an option where a command takes options (not an error to pass over).
        const argv =
          cmd === 'stats' ? [cmd, '--no-stream', '--', v] : cmd === 'exec' ? [cmd, '--', v, 'true'] : [cmd, '--', v];
        list.push({ label: `${cmd} ${name}`, argv, accept: ['error', 'missing'] });
      }
    }
    const results = await runAll(list);
    all.push(...results);
    console.log(`fuzz cli names: ${JSON.stringify(counts(results))}`);
    const bad = wrong(results).map((r) => `${r.label}: ${r.outcome} (exit ${r.code}) ${r.stderr.slice(0, 300)}`);
    expect(bad).toEqual([]);
  }, 120_000);

  it('150,000 arguments', async () => {
    const argv = ['run', ROOTFS, 'true', ...Array.from({ length: 150_000 }, () => 'x')];
    const [r] = await runAll([{ label: 'run 150000 arguments', argv, valid: true }]);
    all.push(r);
    expect(r.outcome, r.stderr.slice(0, 300)).toBe('ok');
  }, 60_000);

  it('left nothing behind', async () => {
    await nsbox(['rm', '-f', TARGET]);
    console.log(`fuzz cli total: ${JSON.stringify(counts(all))}`);
    // Container entries are 12 hex digits (names/ holds the links to them): say which name each had.
    const dir = process.env.NSBOX_STATE_DIR!;
    const entries = readdirSync(dir)
      .filter((e) => /^[0-9a-f]{12}$/.test(e))
      .map((e) => {
        try {
          const st = JSON.parse(readFileSync(`${dir}/${e}/state.json`, 'utf8')) as { name: string; status: string };
          return `${e} ${st.status} name ${JSON.stringify(st.name.slice(0, 40))}`;
        } catch {
          return e;
        }
      });
    expect(entries).toEqual([]);
    expect(await leftovers(before)).toEqual([]);
  }, 60_000);
});
