// What the user-namespace tests share: a scratch copy of the busybox rootfs (with a tiny setuid
// test binary), an ordinary user made for the tests, /etc/subuid and /etc/subgid kept as found,
// and running the CLI as that user.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CLI, collect, ROOTFS, type CliResult } from '../helpers.js';

export const REPO = resolve(__dirname, '..', '..');

/** A world-readable scratch directory (the test user must reach into it). */
export function scratch(): string {
  const dir = mkdtempSync('/tmp/nsbox-userns-');
  chmodSync(dir, 0o755);
  return dir;
}

/** A copy of the busybox rootfs with /bin/suidtest, a static setuid-root binary that prints its ids. */
export function rootfsCopy(dir: string): string {
  const root = `${dir}/rootfs`;
  cpSync(ROOTFS, root, { recursive: true, verbatimSymlinks: true });
  execFileSync('gcc', ['-static', '-O2', '-o', `${root}/bin/suidtest`, resolve(__dirname, 'suidtest.c')]);
  chmodSync(`${root}/bin/suidtest`, 0o4755);
  return root;
}

/**
 * The CLI where any user can run it: dist/, the addon and package.json copied under `dir`
 * (the checkout may sit in a directory only root can enter).
 */
export function cliCopy(dir: string): string {
  const app = `${dir}/app`;
  cpSync(`${REPO}/dist`, `${app}/dist`, { recursive: true });
  mkdirSync(`${app}/build/Release`, { recursive: true });
  cpSync(`${REPO}/build/Release/nsbox.node`, `${app}/build/Release/nsbox.node`);
  cpSync(`${REPO}/package.json`, `${app}/package.json`);
  return `${app}/dist/run.js`;
}

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Its XDG_RUNTIME_DIR. */
  runtime: string;
}

const SUBID_FILES = ['/etc/subuid', '/etc/subgid'];
/** useradd and userdel rewrite these backups too. */
const BACKUPS = ['/etc/subuid-', '/etc/subgid-'];

/** What /etc/subuid and /etc/subgid (and their backups) hold now (null: absent), to put back with restoreSubIds. */
export function saveSubIds(): Map<string, string | null> {
  return new Map([...SUBID_FILES, ...BACKUPS].map((f) => [f, existsSync(f) ? readFileSync(f, 'utf8') : null]));
}

export function restoreSubIds(saved: Map<string, string | null>): void {
  for (const [f, text] of saved) {
    if (text === null) rmSync(f, { force: true });
    else writeFileSync(f, text);
  }
}

/** /etc/subuid and /etc/subgid as saved, less any entry for `owners`, plus `lines`. */
export function setSubIds(saved: Map<string, string | null>, owners: string[], lines: string[]): void {
  for (const [f, text] of saved) {
    if (BACKUPS.includes(f)) continue;
    const kept = (text ?? '').split('\n').filter((l) => l && !owners.includes(l.split(':')[0]));
    writeFileSync(f, [...kept, ...lines].map((l) => `${l}\n`).join(''));
  }
}

/** A fresh ordinary user with a group of its own and no home (one left by a crashed run is replaced). */
export function createUser(name: string, dir: string): TestUser {
  try {
    execFileSync('userdel', [name], { stdio: 'ignore' });
  } catch {
    /* there was none */
  }
  execFileSync('useradd', ['-M', '-U', '-s', '/bin/sh', name]);
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }));
  const runtime = `${dir}/run-${uid}`;
  mkdirSync(runtime, { mode: 0o700 });
  execFileSync('chown', [`${uid}:${gid}`, runtime]);
  return { name, uid, gid, runtime };
}

export function removeUser(u: TestUser | undefined): void {
  if (u) execFileSync('userdel', [u.name], { stdio: 'ignore' });
}

/** Runs `node CLI ARGS...` as the user (setpriv: its ids, no other groups, no capabilities). */
export function nsboxAs(u: TestUser, cli: string, args: string[]): Promise<CliResult> {
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', XDG_RUNTIME_DIR: u.runtime, HOME: '/' };
  const argv = [
    '--reuid',
    String(u.uid),
    '--regid',
    String(u.gid),
    '--clear-groups',
    '--inh-caps=-all',
    process.execPath,
    cli,
    ...args,
  ];
  return collect('setpriv', argv, { env, cwd: '/' });
}

export { CLI };
