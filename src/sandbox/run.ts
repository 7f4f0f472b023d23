// run(spec): spawn, feed input, collect output up to a cap, and resolve with the Result.
import { Readable } from 'node:stream';
import { bad, integer, isPlainObject, kind } from '../check.js';
import { spawn, type Result, type Sandbox, type SandboxSpec } from './spawn.js';
import { collect } from './output.js';

export interface RunSpec extends Omit<SandboxSpec, 'stdio'> {
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer | Readable;
  /** Keep at most this many bytes of stdout and of stderr (each); the rest is read and dropped. */
  maxOutputBytes?: number;
  /** Keep at most this many bytes of stdout and stderr together (default: twice maxOutputBytes). */
  maxTotalOutputBytes?: number;
  /** 'buffer' returns Buffers; default 'utf8' returns strings. */
  encoding?: BufferEncoding | 'buffer';
}

export interface RunResult<T = string> extends Result {
  stdout: T;
  stderr: T;
  /** True when stdout or stderr was cut at maxOutputBytes. */
  outputTruncated: boolean;
}

export const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;
/** What one Buffer may hold. */
export const MAX_OUTPUT = 2 ** 32;

const isStream = (v: unknown): v is { pipe: unknown } => typeof v === 'object' && v !== null && 'pipe' in v;

/** run()'s own options, checked: what to feed and how much output to keep. */
export interface RunIo {
  input: RunSpec['input'];
  max: number;
  total: number;
  encoding: BufferEncoding | 'buffer';
}

export function checkRunIo(o: Pick<RunSpec, 'input' | 'maxOutputBytes' | 'maxTotalOutputBytes' | 'encoding'>): RunIo {
  const { input, maxOutputBytes, maxTotalOutputBytes, encoding = 'utf8' } = o;
  const max =
    maxOutputBytes === undefined ? DEFAULT_MAX_OUTPUT : integer(maxOutputBytes, 'maxOutputBytes', 0, MAX_OUTPUT);
  const total =
    maxTotalOutputBytes === undefined ? 2 * max : integer(maxTotalOutputBytes, 'maxTotalOutputBytes', 0, MAX_OUTPUT);
  if (encoding !== 'buffer' && (typeof encoding !== 'string' || !Buffer.isEncoding(encoding))) {
    bad('encoding', `must be 'buffer' or a Buffer encoding such as 'utf8', got ${kind(encoding)}`);
  }
  const readable = input instanceof Readable || (isStream(input) && typeof input.pipe === 'function');
  if (input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array) && !readable) {
    bad('input', `must be a string, a Buffer or a readable stream, got ${kind(input)}`);
  }
  return { input, max, total, encoding };
}

export function run(spec: RunSpec & { encoding: 'buffer' }): Promise<RunResult<Buffer>>;
export function run(spec: RunSpec): Promise<RunResult<string>>;
export async function run(spec: RunSpec): Promise<RunResult<string | Buffer>> {
  if (!isPlainObject(spec)) bad('spec', `must be an object, got ${kind(spec)}`);
  const { input, maxOutputBytes, maxTotalOutputBytes, encoding, ...rest } = spec;
  if ('stdio' in rest) bad('stdio', 'run() pipes stdin, stdout and stderr itself (use spawn() for other stdio)');
  const io = checkRunIo({ input, maxOutputBytes, maxTotalOutputBytes, encoding });
  return runIn(spawn({ ...rest, stdio: ['pipe', 'pipe', 'pipe'] }), io);
}

/** Feed a piped sandbox its input, collect its output, and resolve with its Result and the output. */
export async function runIn(sb: Sandbox, io: RunIo): Promise<RunResult<string | Buffer>> {
  const { input, max, encoding } = io;
  const total = { left: io.total };
  let out, err;
  try {
    out = collect(sb.stdout!, max, total);
    err = collect(sb.stderr!, max, total);
    const stdin = sb.stdin!;
    stdin.on('error', () => {}); // the command may exit without reading its input
    if (input === undefined) stdin.end();
    else if (typeof input === 'string' || input instanceof Uint8Array) stdin.end(input);
    else (input as Readable).pipe(stdin);
  } catch (e) {
    sb.kill('SIGKILL'); // never left running without a handle
    await sb.exited.catch(() => {});
    throw e;
  }
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
