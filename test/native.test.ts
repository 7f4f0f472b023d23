// nsbox/native: the addon's calls, importable on their own, behave as the README says.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

function inNode(code: string): string {
  const file = resolve(__dirname, '.examples', `native-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code);
  return execFileSync(process.execPath, [file], { encoding: 'utf8' });
}

describe('nsbox/native', () => {
  it('exports typed low-level calls', () => {
    const out = inNode(`import * as n from 'nsbox/native';
      console.log(['spawn','unshare','setns','pivotRoot','mount','umount','sethostname'].map((k) => typeof n[k]).join(' '));`);
    expect(out.trim()).toBe('function function function function function function function');
  });

  it('unshare + sethostname move only the calling thread; user and mount namespace joins are refused', () => {
    const out = inNode(`import { unshare, sethostname, CLONE } from 'nsbox/native';
      import { hostname } from 'node:os';
      import { openSync } from 'node:fs';
      import { setns } from 'nsbox/native';
      unshare(CLONE.NEWUTS);
      sethostname('inner-thread');
      console.log(hostname());
      try { unshare(CLONE.NEWUSER); console.log('userns ok'); } catch (e) { console.log(e.code); }
      try { setns(openSync('/proc/self/ns/mnt', 'r'), CLONE.NEWNS); console.log('setns mnt ok'); } catch (e) { console.log(e.code); }`);
    const [name, user, mnt] = out.trim().split('\n');
    expect(name).toBe('inner-thread');
    expect(user).toBe('EINVAL');
    expect(mnt).toBe('EINVAL');
    expect(execFileSync('hostname', { encoding: 'utf8' }).trim()).not.toBe('inner-thread');
  });

  it('takes a plan as one Buffer (wire) as it takes the ops, and refuses its bytes cut short', () => {
    const out = inNode(`import { spawn, wire } from 'nsbox/native';
      import { readSync } from 'node:fs';
      const ops = [{ op: 7, s: ['/'] }, { op: 9, n: [1, 1], s: ['true', 'A=1', '/bin/true'] }];
      const c = spawn({ flags: 0, ops: wire(ops) });
      console.log(readSync(c.errFd, Buffer.alloc(8)));
      const w = wire(ops);
      for (const b of [w.subarray(0, w.length - 1), Buffer.concat([w, Buffer.alloc(1)])])
        try { spawn({ flags: 0, ops: b }); console.log('taken'); } catch (e) { console.log(e.name, e.message); }`);
    expect(out.trim().split('\n')).toEqual([
      '0',
      "RangeError spawn: ops[1]: the plan's bytes end inside it",
      "RangeError spawn: 1 bytes after the plan's last op",
    ]);
  });

  it('throws errors with the errno name', () => {
    const out = inNode(`import { mount } from 'nsbox/native';
      try { mount('none', '/nonexistent-dir', 'tmpfs'); } catch (e) { console.log(e.code, e.syscall, e.message); }`);
    expect(out.trim()).toBe('ENOENT mount mount: No such file or directory (ENOENT)');
  });
});
