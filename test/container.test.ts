// The Container class's own error paths (the parts hooks that concerns plug in).
import { closeSync, readdirSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Container } from '../dist/index.js';
import { openpty } from '../dist/native.js';
import { consolePart } from '../dist/tty/console.js';
import { expectNothingLeft, ROOTFS, snapshot } from './helpers.js';

let before: ReturnType<typeof snapshot>;
beforeEach(() => {
  before = snapshot();
});
afterEach(async () => {
  await expectNothingLeft(before);
});

const fdCount = () => readdirSync('/proc/self/fd').length;

it('a failing beforeRelease kills the child and leaves no fd and no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const fds = fdCount();
  let ended = 0;
  for (let i = 0; i < 3; i++) {
    expect(
      () =>
        new Container({ rootfs: ROOTFS, command: ['true'] }, [
          {
            beforeRelease() {
              throw new Error('refused');
            },
            afterExit() {
              ended++;
              throw new Error('cleanup failed too');
            },
          },
        ]),
    ).toThrow('refused');
  }
  for (let i = 0; i < 50 && ended < 3; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 20));
  process.off('unhandledRejection', onUnhandled);
  expect(ended).toBe(3);
  expect(unhandled).toEqual([]);
  expect(fdCount()).toBe(fds);
});

it('a spec the plan refuses (too many mounts) leaves no cgroup behind', () => {
  const mounts = Array.from({ length: 1100 }, (_, i) => ({ type: 'tmpfs' as const, target: `/m${i}` }));
  expect(
    () => new Container({ rootfs: ROOTFS, command: ['true'], limits: { memory: '64m', pids: 10 }, mounts }),
  ).toThrow(/too many/);
  // afterEach: no cgroup left
});

it('takes a few hundred mounts, and a terminal besides (slots are allocated, none fixed)', async () => {
  const mounts = Array.from({ length: 300 }, (_, i) => ({ type: 'tmpfs' as const, target: `/m/${i}`, size: '64k' }));
  const pty = openpty();
  try {
    const c = new Container(
      {
        rootfs: ROOTFS,
        command: ['sh', '-c', 'test "$(grep -c " /m/" /proc/self/mountinfo)" = 300 && tty -s'],
        mounts,
        stdio: [pty.slave, pty.slave, pty.slave],
      },
      [consolePart(pty.path)],
    );
    expect((await c.exited).code).toBe(0);
  } finally {
    closeSync(pty.master);
    closeSync(pty.slave);
  }
});
