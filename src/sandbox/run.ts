// run(spec): spawn, feed input, collect output up to a cap, and resolve with the Result.
import type { Readable } from 'node:stream';
import { NsboxError } from '../errors.js';
import { spawn, type Result, type SandboxSpec } from './spawn.js';

export interface RunSpec extends Omit<SandboxSpec, 'stdio'> {
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer | Readable;
  /** Keep at most this many bytes of stdout and of stderr (each); the rest is read and dropped. */
  maxOutputBytes?: number;
  /** 'buffer' returns Buffers; default 'utf8' returns strings. */
  encoding?: BufferEncoding | 'buffer';
}

export interface RunResult<T = string> extends Result {
  stdout: T;
  stderr: T;
  /** True when stdout or stderr was cut at maxOutputBytes. */
  outputTruncated: boolean;
}

const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

function collect(stream: Readable, max: number) {
  const chunks: Buffer[] = [];
  const c = { size: 0, truncated: false, chunks };
  stream.on('data', (d: Buffer) => {
    const room = max - c.size;
    if (room <= 0) {
      c.truncated = true;
      return;
    }
    if (d.length > room) c.truncated = true;
    const keep = d.length > room ? d.subarray(0, room) : d;
    chunks.push(keep);
    c.size += keep.length;
  });
  return { c, done: new Promise<void>((res) => stream.once('close', res)) };
}

export function run(spec: RunSpec & { encoding: 'buffer' }): Promise<RunResult<Buffer>>;
export function run(spec: RunSpec): Promise<RunResult<string>>;
export async function run(spec: RunSpec): Promise<RunResult<string | Buffer>> {
  const { input, maxOutputBytes, encoding = 'utf8', ...rest } = spec;
  const max = maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  if (!Number.isInteger(max) || max < 0) throw new NsboxError('spec.maxOutputBytes must be a whole number of bytes', { step: 'maxOutputBytes' });
  const sb = spawn({ ...rest, stdio: ['pipe', 'pipe', 'pipe'] });
  const out = collect(sb.stdout!, max);
  const err = collect(sb.stderr!, max);
  const stdin = sb.stdin!;
  stdin.on('error', () => {}); // the command may exit without reading its input
  if (input === undefined) stdin.end();
  else if (typeof input === 'string' || Buffer.isBuffer(input)) stdin.end(input);
  else input.pipe(stdin);
  const result = await sb.exited;
  await Promise.all([out.done, err.done]);
  const decode = (b: Buffer) => (encoding === 'buffer' ? b : b.toString(encoding));
  return {
    ...result,
    stdout: decode(Buffer.concat(out.c.chunks)),
    stderr: decode(Buffer.concat(err.c.chunks)),
    outputTruncated: out.c.truncated || err.c.truncated,
  };
}
