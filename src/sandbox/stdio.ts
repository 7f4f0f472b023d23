// stdio for a sandbox, as child_process has it: 'pipe', 'inherit', 'ignore' or an fd.
import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { NsboxError } from '../errors.js';
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

function normalize(stdio: StdioOption | StdioOption[] | undefined): StdioOption[] {
  if (stdio === undefined) return ['pipe', 'pipe', 'pipe'];
  const list = Array.isArray(stdio) ? stdio : [stdio, stdio, stdio];
  if (list.length !== 3) throw new NsboxError('spec.stdio must be one option or three (stdin, stdout, stderr)', { step: 'stdio' });
  for (const s of list) {
    const ok = s === 'pipe' || s === 'inherit' || s === 'ignore' || (Number.isInteger(s) && (s as number) >= 0);
    if (!ok) throw new NsboxError(`spec.stdio: invalid option ${JSON.stringify(s)} ('pipe', 'inherit', 'ignore' or an fd)`, { step: 'stdio' });
  }
  return list;
}

export function openStdio(option: StdioOption | StdioOption[] | undefined): Stdio {
  const list = normalize(option);
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
    closeChildEnds: () => { for (const fd of toClose.splice(0)) closeSync(fd); },
    destroy() {
      this.closeChildEnds();
      for (const s of streams) s?.destroy();
    },
  };
}
