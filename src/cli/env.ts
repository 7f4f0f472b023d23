// -e / --env and --env-file, as docker reads them: KEY=VALUE sets, a bare KEY passes this process's
// value and nothing when it is unset; an env file has one such entry a line, `#` comments and blank
// lines. The file is read bounded, and only when it is a regular file.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { NsboxError } from '../errors.js';

const MAX_ENV_FILE = 1 << 20;

function readEnvFile(path: string): string[] {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new NsboxError(
      `--env-file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { field: 'env-file' },
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NsboxError(`--env-file ${path}: not a regular file`, { field: 'env-file' });
    if (st.size > MAX_ENV_FILE) throw new NsboxError(`--env-file ${path}: larger than 1 MiB`, { field: 'env-file' });
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    return buf
      .subarray(0, n)
      .toString('utf8')
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  } finally {
    closeSync(fd);
  }
}

/** Applies entries to `env` in order: files first, then -e, as docker does. */
export function applyEnv(env: Map<string, string>, entries: string[] | undefined, files: string[] | undefined): void {
  for (const kv of [...(files ?? []).flatMap(readEnvFile), ...(entries ?? [])]) {
    if (kv.includes('\0')) throw new NsboxError('invalid --env value: contains a NUL byte', { field: 'env' });
    const eq = kv.indexOf('=');
    if (kv === '')
      throw new NsboxError('invalid --env value: an empty name (expected KEY=VALUE or KEY)', { field: 'env' });
    if (eq === 0) throw new NsboxError(`invalid --env value: ${kv} (expected KEY=VALUE)`, { field: 'env' });
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
    else if (process.env[kv] !== undefined) env.set(kv, process.env[kv]!);
    else env.delete(kv); // a bare name that is unset here: nothing, as docker does
  }
}
