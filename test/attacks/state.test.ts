// Attacks through the state directory (issue 10, class 5): nsbox decides which pid to signal from
// what it reads there, and names files after container names. A state directory (or an entry in
// it) someone else can write, a planted state.json naming a victim, a symlink where a file should
// be, a name that walks out of names/: each is refused before anything is read, signalled or removed.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectNothingLeft, nsbox, ROOTFS, snapshot } from '../helpers.js';

const NOBODY = 65534;
let dir: string;
let victim: ChildProcess;
let before: ReturnType<typeof snapshot>;

/** Start time of a process in clock ticks (/proc/PID/stat field 22). */
function startOf(pid: number): number {
  const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(t.slice(t.lastIndexOf(')') + 2).split(' ')[19]);
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

/** A fresh state directory with names/, as nsbox makes it (root's, mode 0700). */
function freshState(): string {
  const s = mkdtempSync(`${dir}/state-`);
  mkdirSync(`${s}/names`, { mode: 0o700 });
  return s;
}

/** What an attacker plants: a running container whose monitor is dead and whose PID 1 is the victim. */
function plant(state: string, id: string, pid: number, pidStart: number, recordedId = id): void {
  mkdirSync(`${state}/${id}`, { mode: 0o700 });
  writeFileSync(`${state}/${id}/lock`, '');
  writeFileSync(
    `${state}/${id}/state.json`,
    JSON.stringify({
      id: recordedId,
      name: 'planted',
      status: 'running',
      rootfs: '/',
      command: ['sleep'],
      hostname: 'planted',
      createdAt: new Date().toISOString(),
      pid,
      pidStart,
      monitor: { pid: 0, start: 0 },
      detached: true,
      autoRemove: false,
      init: false,
      tty: false,
      exec: { env: [], cwd: '/', creds: [] },
      logLimit: 1024,
    }),
  );
}

const cli = (state: string, args: string[]) => nsbox(args, { env: { ...process.env, NSBOX_STATE_DIR: state } });

beforeAll(() => {
  dir = mkdtempSync('/tmp/nsbox-attack-state-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  before = snapshot();
  victim = spawn('sleep', ['600'], { stdio: 'ignore' });
});
afterEach(async () => {
  victim.kill('SIGKILL');
  await expectNothingLeft(before);
});

describe('a state directory someone else can write is refused', () => {
  it('a root writable by others: a planted state.json naming a victim pid kills nothing', async () => {
    const state = freshState();
    chmodSync(state, 0o777);
    plant(state, 'aaaaaaaaaaaa', victim.pid!, startOf(victim.pid!));
    // Every command fails as an nsbox error (125), as podman's do.
    const cases = [
      [['ps', '-a'], 125],
      [['inspect', 'planted'], 125],
      [['rm', '-f', 'aaaaaaaaaaaa'], 125],
      [['kill', 'aaaaaaaaaaaa'], 125],
    ] as const;
    for (const [args, code] of cases) {
      const r = await cli(state, [...args]);
      expect(r.stderr).toBe(`nsbox: refusing the state ${state}: writable by group or others (mode 777)\n`);
      expect(r.code).toBe(code);
    }
    expect(alive(victim)).toBe(true);
    expect(readdirSync(state).sort()).toEqual(['aaaaaaaaaaaa', 'names']); // nothing read, nothing cleaned
  });

  it('a root owned by another user (even mode 0700) is refused', async () => {
    const state = freshState();
    plant(state, 'bbbbbbbbbbbb', victim.pid!, startOf(victim.pid!));
    chownSync(state, NOBODY, NOBODY);
    const r = await cli(state, ['ps']);
    expect(r.stderr).toBe(`nsbox: refusing the state ${state}: owned by uid ${NOBODY}, not by this user (uid 0)\n`);
    expect(r.code).toBe(125);
    // And nothing is made in it: a run is refused before it registers.
    const run = await cli(state, ['run', '--name', 'x', ROOTFS, 'true']);
    expect(run.stderr).toMatch(/^nsbox: refusing the state .*: owned by uid 65534/);
    expect(run.code).toBe(125);
    expect(alive(victim)).toBe(true);
  });

  it('an entry owned by another user, or writable by others, inside a good root is refused', async () => {
    const state = freshState();
    plant(state, 'cccccccccccc', victim.pid!, startOf(victim.pid!));
    chownSync(`${state}/cccccccccccc`, NOBODY, NOBODY);
    let r = await cli(state, ['ps', '-a']);
    const entry = `${state}/cccccccccccc`;
    expect(r.stderr).toBe(`nsbox: refusing the state ${entry}: owned by uid ${NOBODY}, not by this user (uid 0)\n`);
    expect(r.code).toBe(125);
    chownSync(`${state}/cccccccccccc`, 0, 0);
    chmodSync(`${state}/cccccccccccc`, 0o733);
    r = await cli(state, ['ps', '-a']);
    expect(r.stderr).toBe(`nsbox: refusing the state ${state}/cccccccccccc: writable by group or others (mode 733)\n`);
    expect(alive(victim)).toBe(true);
  });

  it('a state root, an entry or a state.json that is a symlink is not followed', async () => {
    // The symlinks point at a well-formed state elsewhere: followed, it would kill the victim.
    const elsewhere = freshState();
    plant(elsewhere, 'dddddddddddd', victim.pid!, startOf(victim.pid!));
    symlinkSync(elsewhere, `${dir}/link-root`);
    let r = await cli(`${dir}/link-root`, ['ps']);
    expect(r.stderr).toBe(`nsbox: refusing the state ${dir}/link-root: not a directory (a symlink?)\n`);
    expect(r.code).toBe(125);

    const state = freshState();
    symlinkSync(`${elsewhere}/dddddddddddd`, `${state}/dddddddddddd`);
    r = await cli(state, ['ps', '-a']);
    expect(r.stderr).toBe(`nsbox: refusing the state ${state}/dddddddddddd: not a directory (a symlink?)\n`);

    const state2 = freshState();
    mkdirSync(`${state2}/dddddddddddd`, { mode: 0o700 });
    writeFileSync(`${state2}/dddddddddddd/lock`, '');
    symlinkSync(`${elsewhere}/dddddddddddd/state.json`, `${state2}/dddddddddddd/state.json`);
    r = await cli(state2, ['ps', '-a']);
    expect(r.stderr).toBe(`nsbox: refusing the state ${state2}/dddddddddddd/state.json: a symlink\n`);
    expect(r.code).toBe(125);
    expect(alive(victim)).toBe(true);
  });

  it('a names/ entry pointing outside is not followed: find takes only container ids from it', async () => {
    const state = freshState();
    // Outside the state root, recording the id as the name's target: followed, its lock and pid are used.
    plant(`${dir}`, 'eeeeeeeeeeee', victim.pid!, startOf(victim.pid!), '../eeeeeeeeeeee');
    symlinkSync('../eeeeeeeeeeee', `${state}/names/evil`);
    const r = await cli(state, ['rm', '-f', 'evil']);
    expect(r.stderr).toBe('nsbox: no such container: evil\n');
    expect(alive(victim)).toBe(true);
    rmSync(`${dir}/eeeeeeeeeeee`, { recursive: true });
  });
});

describe('a recorded pid is signalled only while it is the recorded process', () => {
  it('a stale record whose pid now belongs to another process: ps, kill and rm -f leave it alone', async () => {
    const state = freshState();
    // The record's start time is not the victim's: the pid was reused.
    plant(state, 'ffffffffffff', victim.pid!, startOf(victim.pid!) - 1);
    const ps = await cli(state, ['ps', '-a', '--format', 'json']);
    expect(ps.code).toBe(0);
    expect(JSON.parse(ps.stdout)).toMatchObject([{ id: 'ffffffffffff', status: 'stopped' }]);
    expect((await cli(state, ['kill', 'ffffffffffff'])).stderr).toBe('nsbox: container planted is not running\n');
    expect((await cli(state, ['rm', '-f', 'ffffffffffff'])).code).toBe(0);
    expect(readdirSync(state)).toEqual(['.lock', 'names']);
    expect(alive(victim)).toBe(true);
  });
});

describe('names are checked before any file is touched', () => {
  it('--name ../../dir/link deletes no host symlink (run and run -d)', async () => {
    const state = freshState();
    mkdirSync(`${dir}/d`, { recursive: true });
    symlinkSync('/etc/hostname', `${dir}/d/link`);
    const rel = '../../d/link'; // from STATE/names/ to dir/d/link
    expect(existsSync(`${state}/names/${rel}`)).toBe(true);
    for (const mode of [[], ['-d']]) {
      const r = await cli(state, ['run', ...mode, '--name', rel, ROOTFS, 'true']);
      expect(r.stderr).toMatch(/^nsbox: invalid container name: "[^\n]*\n$/);
      expect(r.code).toBe(125);
      expect(lstatSync(`${dir}/d/link`).isSymbolicLink()).toBe(true);
    }
    expect(readdirSync(state)).toEqual(['names']);
  });

  it("invalid names ('', '.', '..', 'a/b', 5,000 characters, a newline) leave no entry behind", async () => {
    const state = freshState();
    for (const name of ['', '.', '..', 'a/b', 'x'.repeat(5000), 'a\nb', '-x']) {
      for (const mode of [[], ['-d']]) {
        const r = await cli(state, ['run', ...mode, `--name=${name}`, ROOTFS, 'true']);
        expect(r.stderr).toMatch(/^nsbox: invalid container name: "[^\n]{0,200}\n$/);
        expect(r.code).toBe(125);
      }
    }
    expect(readdirSync(state)).toEqual(['names']);
    expect(readdirSync(`${state}/names`)).toEqual([]);
  });

  it('the library refuses them as well, through the same check', async () => {
    const { Container } = await import('../../dist/container.js');
    const { Tracker } = await import('../../dist/state/track.js');
    for (const name of ['', '..', 'a/b', 'x'.repeat(5000)]) {
      expect(() => new Container({ rootfs: ROOTFS, command: ['true'], name })).toThrow(/invalid container name/);
      const state = freshState();
      const saved = process.env.NSBOX_STATE_DIR;
      process.env.NSBOX_STATE_DIR = state;
      try {
        const o = {
          name,
          rootfs: ROOTFS,
          command: ['true'],
          detached: false,
          autoRemove: true,
          init: false,
          tty: false,
          logLimit: 0,
        };
        expect(() => new Tracker(o)).toThrow(/invalid container name/);
      } finally {
        process.env.NSBOX_STATE_DIR = saved;
      }
      expect(readdirSync(state)).toEqual(['names']);
    }
  });
});
