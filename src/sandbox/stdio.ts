// stdio for a sandbox, as child_process has it: 'pipe', 'inherit', 'ignore' or an fd.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { bad, show } from '../check.js';
import { pipe } from '../native.js';

export type StdioOption = 'pipe' | 'inherit' | 'ignore' | number;

export interface Stdio {
  /** The fds the child gets as 0, 1, 2. */
  childFds: [number, number, number];
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  /** Close this process's copies of the child's ends (after clone). */
  closeChildEnds(): void;
  /** Destroy the parent's streams (when the start failed). */
  destroy(): void;
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Checks a stdio option; returns it as three. */
export function checkStdio(stdio: unknown): StdioOption[] {
  if (stdio === undefined) return ['pipe', 'pipe', 'pipe'];
  const list: unknown[] = Array.isArray(stdio) ? stdio : [stdio, stdio, stdio];
  if (list.length !== 3) bad('stdio', 'must be one option or three (stdin, stdout, stderr)');
  for (const s of list) {
    const fd = typeof s === 'number' && Number.isInteger(s) && s >= 0 && s <= 2 ** 31 - 1;
    if (!fd && s !== 'pipe' && s !== 'inherit' && s !== 'ignore') {
      bad('stdio', `invalid option ${show(s)} ('pipe', 'inherit', 'ignore' or an fd)`);
    }
    if (fd && !isOpen(s as number)) bad('stdio', `fd ${s} is not open`);
  }
  return list as StdioOption[];
}

export function openStdio(option: StdioOption | StdioOption[] | undefined): Stdio {
  const list = checkStdio(option);
  const toClose: number[] = [];
  const streams: (Socket | null)[] = [null, null, null];
  const childFds = list.map((s, i) => {
    if (s === 'inherit') return i;
    if (typeof s === 'number') return s;
    if (s === 'ignore') {
      const fd = openSync('/dev/null', i === 0 ? 'r' : 'w');
      toClose.push(fd);
      return fd;
    }
    const [r, w] = pipe();
    const [mine, theirs] = i === 0 ? [w, r] : [r, w];
    toClose.push(theirs);
    streams[i] = new Socket({ fd: mine, readable: i !== 0, writable: i === 0 });
    return theirs;
  }) as [number, number, number];
  return {
    childFds,
    stdin: streams[0],
    stdout: streams[1],
    stderr: streams[2],
    closeChildEnds: () => {
      for (const fd of toClose.splice(0)) closeSync(fd);
    },
    destroy() {
      this.closeChildEnds();
      for (const s of streams) s?.destroy();
    },
  };
}
