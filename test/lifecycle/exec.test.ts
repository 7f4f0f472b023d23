// exec: a new process in all of a running container's namespaces, its cgroup, root, cwd,
// environment and credentials; the nsenter form; and the CVE-2019-5736 class: the process
// that straddles host and container cannot be reached through /proc from inside.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alive, cli, env, lifecycleHooks, ok, ROOTFS, startCli, stateJson, until } from './util.js';
import { CLI } from '../helpers.js';

lifecycleHooks();

const SLEEP = ['sh', '-c', 'while true; do sleep 1; done'];

async function container(...args: string[]): Promise<{ id: string; pid: number }> {
  const id = (await ok(['run', '-d', ...args])).trim();
  return { id, pid: stateJson(id).pid };
}

/** Host pids of processes in the PID namespace of `pid` whose command line includes `text`; null if none. */
function inPidns(pid: number, text: string, also: (p: number) => boolean = () => true): number[] | null {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  const found = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => {
      try {
        return (
          readlinkSync(`/proc/${p}/ns/pid`) === ns &&
          readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(text) &&
          also(p)
        );
      } catch {
        return false;
      }
    });
  return found.length ? found : null;
}

describe('exec NAME', () => {
  it("joins the container's PID namespace, hostname, mounts and cgroup", async () => {
    // SYS_ADMIN so that PID 1 can mount (Docker's default capabilities do not include it).
    const c = await container(
      '--name',
      'box',
      '--hostname',
      'inner',
      '--cap-add',
      'SYS_ADMIN',
      ROOTFS,
      'sh',
      '-c',
      'mount -t tmpfs none /home && echo mounted-by-pid1 > /home/mark && while true; do sleep 1; done',
    );
    await until(
      async () => (await cli(['exec', 'box', 'cat', '/home/mark'])).stdout === 'mounted-by-pid1\n',
      'the mount made by PID 1',
    );
    const out = await ok([
      'exec',
      'box',
      'sh',
      '-c',
      'for n in pid mnt net uts ipc cgroup; do readlink /proc/self/ns/$n; done; hostname; ps -o pid,args | sed -n 2p; cat /proc/self/cgroup | md5sum; cat /proc/1/cgroup | md5sum',
    ]);
    const lines = out.trim().split('\n');
    for (const [i, ns] of ['pid', 'mnt', 'net', 'uts', 'ipc', 'cgroup'].entries())
      expect(lines[i]).toBe(readlinkSync(`/proc/${c.pid}/ns/${ns}`));
    expect(lines[6]).toBe('inner');
    expect(existsSync(`${ROOTFS}/home/mark`)).toBe(false); // the container's mount, not the rootfs directory
    expect(lines[7].trim()).toMatch(/^1 sh -c mount -t tmpfs none \/home/); // PID 1 inside is the container's command
    expect(lines[8]).toBe(lines[9]); // the same cgroup as PID 1, as seen inside
  });

  it('is in the same cgroups as PID 1 on the host (v1 and v2)', async () => {
    const c = await container('--name', 'cg', ROOTFS, ...SLEEP);
    const p = startCli(['exec', 'cg', 'sleep', '1000']);
    const [pid] = await until(() => inPidns(c.pid, 'sleep 1000'), 'the exec to run');
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toBe(readFileSync(`/proc/${c.pid}/cgroup`, 'utf8'));
    // Its pid inside is small: it is a member of the container's PID namespace.
    expect(Number(/NSpid:\s+\d+\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])).toBeLessThan(100);
    p.kill('SIGTERM'); // forwarded: sleep ends
    expect(await new Promise((r) => p.on('close', (code, sig) => r(code ?? sig)))).toBe(143);
  });

  it("gets the container's environment and working directory, with -e and -w on top", async () => {
    await container('--name', 'env', '-e', 'A=1', '-e', 'B=2', '-w', '/tmp', ROOTFS, ...SLEEP);
    expect(await ok(['exec', 'env', 'sh', '-c', 'echo $A $B $HOSTNAME; pwd'])).toBe('1 2 env\n/tmp\n');
    expect(await ok(['exec', '-e', 'B=3', '-e', 'C=4', '-w', '/etc', 'env', 'sh', '-c', 'echo $A $B $C; pwd'])).toBe(
      '1 3 4\n/etc\n',
    );
  });

  it("has the container's user, capabilities, no_new_privs and seccomp mode; -u changes the user", async () => {
    await container('--name', 'creds', ROOTFS, ...SLEEP);
    const status = (s: string) =>
      s
        .split('\n')
        .filter((l) => /^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):/.test(l))
        .join('\n');
    const pid1 = status(await ok(['exec', 'creds', 'cat', '/proc/1/status']));
    const mine = status(await ok(['exec', 'creds', 'cat', '/proc/self/status']));
    expect(mine).toBe(pid1);
    expect(pid1).toMatch(/CapBnd/);
    const u = await ok([
      'exec',
      '-u',
      '1000:1000',
      'creds',
      'sh',
      '-c',
      'id -u; id -g; grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status',
    ]);
    const [uid, gid, eff, prm, bnd] = u.trim().split('\n');
    expect([uid, gid]).toEqual(['1000', '1000']);
    expect(eff).toMatch(/0{16}$/);
    expect(prm).toMatch(/0{16}$/);
    expect(bnd).toBe(pid1.split('\n').find((l) => l.startsWith('CapBnd')));
    expect(await ok(['exec', '-u', 'root', 'creds', 'id', '-u'])).toBe('0\n');
    const r = await cli(['exec', '-u', 'nobody-here', 'creds', 'id']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^nsbox: --user: no user nobody-here in /);
  });

  it('passes stdin only with -i, and exits with the command status', async () => {
    await container('--name', 'io', ROOTFS, ...SLEEP);
    expect((await cli(['exec', '-i', 'io', 'cat'], { input: 'piped\n' })).stdout).toBe('piped\n');
    expect((await cli(['exec', 'io', 'cat'], { input: 'piped\n' })).stdout).toBe('');
    expect((await cli(['exec', 'io', 'sh', '-c', 'exit 3'])).code).toBe(3);
    const nf = await cli(['exec', 'io', 'nope']);
    expect([nf.code, nf.stderr]).toEqual([127, 'nsbox: executable file not found in rootfs: nope\n']);
    const ne = await cli(['exec', 'io', '/etc/passwd']);
    expect([ne.code, ne.stderr]).toEqual([126, 'nsbox: permission denied: /etc/passwd is not executable\n']);
    const killed = await cli(['exec', 'io', 'sh', '-c', 'kill -9 $$']);
    expect(killed.code).toBe(137);
  });

  it('refuses stopped and unknown containers clearly', async () => {
    const c = await container('--name', 'gone', ROOTFS, 'true');
    await until(() => stateJson(c.id).status === 'stopped', 'it to stop');
    expect(await cli(['exec', 'gone', 'true'])).toMatchObject({
      code: 125,
      stderr: 'nsbox: container gone is not running\n',
    });
    expect(await cli(['exec', 'nothere', 'true'])).toMatchObject({
      code: 125,
      stderr: 'nsbox: no such container: nothere\n',
    });
    expect(await cli(['exec', 'gone'])).toMatchObject({ code: 125, stderr: 'nsbox: no command given (see --help)\n' });
  });

  it('leaves no process behind when the exec is killed', async () => {
    const c = await container('--name', 'k', ROOTFS, ...SLEEP);
    const p = startCli(['exec', 'k', 'sleep', '1000']);
    const [pid] = await until(() => inPidns(c.pid, 'sleep 1000'), 'the exec to run');
    p.kill('SIGINT');
    await new Promise((r) => p.on('close', r));
    await until(() => !alive(pid), 'the exec to end');
  });
});

describe('exec --target PID (nsenter form)', () => {
  it('joins only the namespaces asked for', async () => {
    const c = await container('--name', 'nse', '--hostname', 'nsehost', ROOTFS, ...SLEEP);
    // UTS only: the host's files and binaries, the container's hostname.
    expect(await ok(['exec', '--target', String(c.pid), '--uts', 'hostname'])).toBe('nsehost\n');
    const netOnly = await ok([
      'exec',
      '--target',
      String(c.pid),
      '--net',
      'readlink',
      '/proc/self/ns/net',
      '/proc/self/ns/mnt',
    ]);
    expect(netOnly.trim().split('\n')).toEqual([
      readlinkSync(`/proc/${c.pid}/ns/net`),
      readlinkSync('/proc/self/ns/mnt'),
    ]);
    // All of them (none named): the container's root, PID namespace and hostname.
    const all = await ok([
      'exec',
      '--target',
      String(c.pid),
      'sh',
      '-c',
      'hostname; readlink /proc/self/ns/pid; test -e /work || echo no-host-files',
    ]);
    expect(all).toBe(`nsehost\n${readlinkSync(`/proc/${c.pid}/ns/pid`)}\nno-host-files\n`);
    expect(await cli(['exec', '--target', '999999999', 'true'])).toMatchObject({
      code: 125,
      stderr: 'nsbox: no such process: 999999999\n',
    });
  });
});

describe('the process that straddles host and container (CVE-2019-5736 class)', () => {
  it('cannot be reached through /proc/PID/exe, fd, environ or mem from inside, and holds no host fd', async () => {
    // strace holds the exec'd process for 4 s at the entry of its execve(): still a copy of the
    // host's node, already in the container's PID namespace. That is the window runc's CVE used.
    const c = await container('--name', 'cve', ROOTFS, ...SLEEP);
    const p = spawn(
      'strace',
      [
        '-f',
        '-qq',
        '-o',
        '/dev/null',
        '-e',
        'trace=execve',
        '-e',
        'inject=execve:delay_enter=4000000',
        process.execPath,
        CLI,
        'exec',
        'cve',
        '/bin/true',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    const done = new Promise((r) => p.on('close', r));
    const node = (q: number) => readFileSync(`/proc/${q}/stat`, 'utf8').includes('(node)');
    const [hostPid] = await until(() => inPidns(c.pid, '', node), 'the exec to be held in the window');
    const inner = /NSpid:\s+\d+\s+(\d+)/.exec(readFileSync(`/proc/${hostPid}/status`, 'utf8'))![1];
    // It holds 0-2 and its own error pipe, nothing of the host's; it is not dumpable.
    const fds = readdirSync(`/proc/${hostPid}/fd`)
      .map(Number)
      .filter((n) => n > 2);
    expect(fds.map((n) => readlinkSync(`/proc/${hostPid}/fd/${n}`))).toEqual([expect.stringMatching(/^pipe:/)]);
    // From inside, as the container's root: what CVE-2019-5736 did, and its relatives.
    const attack = await ok([
      'exec',
      'cve',
      'sh',
      '-c',
      [
        `readlink /proc/${inner}/exe >/dev/null 2>&1 && echo EXE-LINK`,
        `cat /proc/${inner}/exe >/dev/null 2>&1 && echo EXE-OPEN`,
        // (Listing the fd directory needs only its owner's uid, root here; following an entry needs ptrace access.)
        `for f in /proc/${inner}/fd/*; do readlink $f >/dev/null 2>&1 && echo FD-LINK; done`,
        `for f in /proc/${inner}/fd/*; do cat $f </dev/null >/dev/null 2>&1 && echo FD-OPEN; done`,
        `cat /proc/${inner}/environ >/dev/null 2>&1 && echo ENVIRON`,
        `cat /proc/${inner}/mem >/dev/null 2>&1 && echo MEM`,
        `test -e /proc/${inner}/stat && echo VISIBLE`,
        // Control: the same reads work on a dumpable process of the container (its PID 1).
        'readlink /proc/1/exe >/dev/null && ls /proc/1/fd >/dev/null && cat /proc/1/environ >/dev/null && echo CONTROL-OK',
      ].join('; '),
    ]);
    expect(attack).toBe('VISIBLE\nCONTROL-OK\n');
    expect(await done).toBe(0);
    expect(stderr).toBe('');
  });
});
