// A registry of our own on loopback for the tests: Debian's docker-registry, started and stopped
// by the test, and a small Node front that plays a token server, redirects and misbehaviours.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface Registry {
  port: number;
  host: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** docker-registry serving DIR/data on 127.0.0.1, with its config in DIR. */
export async function startRegistry(dir: string): Promise<Registry> {
  const port = await freePort();
  mkdirSync(`${dir}/data`, { recursive: true });
  writeFileSync(
    `${dir}/config.yml`,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dir}/data`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const proc = spawn('/usr/bin/docker-registry', ['serve', `${dir}/config.yml`], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    host: `127.0.0.1:${port}`,
    proc,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const gone = new Promise((r) => proc.once('exit', r));
      process.kill(proc.pid!, 'SIGTERM');
      await gone;
    },
  };
}

/** Forwards a request to the real registry. */
export function proxy(req: IncomingMessage, res: ServerResponse, upstream: number, path = req.url!): void {
  const headers = { ...req.headers, host: `127.0.0.1:${upstream}` };
  delete headers.authorization;
  const up = request({ host: '127.0.0.1', port: upstream, path, method: req.method, headers }, (r) => {
    res.writeHead(r.statusCode!, r.headers);
    r.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

export async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}
