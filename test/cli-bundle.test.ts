// The bundled CLI (scripts/bundle-cli.mjs, dist/run.cjs): every command still works from it though each
// is loaded only when used; a command reads only its own files of dist/bundle/; `npm pack` ships
// dist/run.js and a package that runs.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, CLI, nsbox, ROOTFS } from './helpers.js';

const ROOT = resolve(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'nsbox-bundle-test-'));
chmodSync(dir, 0o755);
const state = join(dir, 'state');
mkdirSync(state, { mode: 0o755 });
const env = { ...process.env, NSBOX_STATE_DIR: state, NSBOX_STORAGE_DIR: join(dir, 'storage') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every command of `nsbox --help`, with --help. */
const COMMANDS = ['run', 'ps', 'list', 'inspect', 'top', 'logs', 'exec', 'kill', 'stop', 'rm', 'prune'];
COMMANDS.push('stats', 'info', 'network', 'port', 'pull', 'import', 'images', 'rmi', 'image', 'export');

describe('every command from the bundle', () => {
  it('the list of commands in --help is the one tested here', async () => {
    const r = await nsbox(['--help'], { env });
    expect(r.code).toBe(0);
    const listed = r.stdout
      .split('Commands (each has --help):\n')[1]
      .split('\n')
      .flatMap((l) =>
        l
          .trim()
          .split(/\s{2,}/)[0]
          .split(', '),
      )
      .map((w) => w.split(' ')[0])
      .filter((w) => w && w !== 'version');
    expect(listed.sort()).toEqual([...COMMANDS].sort());
  });

  it.each(COMMANDS)('%s --help', async (cmd) => {
    const r = await nsbox([cmd, '--help'], { env });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^Usage: /);
  });

  it('the harmless forms: version, ps, list, images, info, network ls, stats --no-stream, prune', async () => {
    const forms = [['version'], ['ps'], ['ps', '-a', '--format', 'json'], ['list'], ['images'], ['info']];
    forms.push(['network', 'ls'], ['stats', '--no-stream'], ['prune'], ['image', 'prune']);
    for (const argv of forms) {
      const r = await nsbox(argv, { env });
      expect({ argv, code: r.code, stderr: r.stderr }).toEqual({ argv, code: 0, stderr: '' });
    }
  });

  it('run, run -d, exec, logs and rm of a container', async () => {
    expect((await nsbox([ROOTFS, 'echo', 'hi'], { env })).stdout).toBe('hi\n');
    const d = await nsbox(['run', '-d', '--name', 'b1', ROOTFS, 'sh', '-c', 'echo up; sleep 1000'], { env });
    expect(d.code).toBe(0);
    expect((await nsbox(['exec', 'b1', 'echo', 'in'], { env })).stdout).toBe('in\n');
    expect((await nsbox(['logs', 'b1'], { env })).stdout).toBe('up\n');
    expect((await nsbox(['rm', '-f', 'b1'], { env })).stdout).toBe('b1\n');
  });
});

/** The files of dist/bundle/ a command opens (strace), without their .cache. */
let traced = 0;
async function bundleFilesRead(argv: string[]): Promise<string[]> {
  const log = join(dir, `strace.${traced++}`);
  const r = await collect('strace', ['-f', '-e', 'trace=openat', '-o', log, process.execPath, '--', CLI, ...argv], {
    env,
  });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  const files = [...readFileSync(log, 'utf8').matchAll(/dist\/bundle\/([\w-]+)\.cjs"/g)].map((m) => m[1]);
  return [...new Set(files)].map((f) => f.replace(/-[A-Z0-9]{8}$/, '')).sort();
}

describe('a command reads only its own files', () => {
  it('version reads main only; ps and exec one file each; run one, without the images or the ps code', async () => {
    expect(await bundleFilesRead(['version'])).toEqual(['main']);
    expect(await bundleFilesRead(['ps'])).toEqual(['ps']);
    expect(await bundleFilesRead(['exec', '--help'])).toEqual(['exec']);
    expect(await bundleFilesRead(['run', '--help'])).toEqual(['run']);
    expect(await bundleFilesRead([ROOTFS, 'true'])).toEqual(['run']);
    // node-tar (an archive reader) is in no file `run` reads.
    const runFile = readdirSync(join(ROOT, 'dist', 'bundle')).find((f) => /^run-.*\.cjs$/.test(f))!;
    expect(readFileSync(join(ROOT, 'dist', 'bundle', runFile), 'utf8')).not.toMatch(/node-tar|TAR_/);
  });

  it('a detached container reads only the files of run, its set-up step and its clean-up step', async () => {
    // strace follows nsbox-monitor (native, run -d's child) to its end: the container ends at once, --rm; the
    // monitor runs the Node set-up step at the start and the clean-up step at the end.
    const files = await bundleFilesRead(['run', '-d', '--rm', ROOTFS, 'true']);
    expect(files).toEqual(['cleanup', 'run', 'setup']);
  });
});

describe('npm pack', () => {
  it('ships dist/run.js, and the unpacked package runs', () => {
    // A copy of the package, packed as `npm pack` does (prepack, then the files, then postpack).
    const src = join(dir, 'src');
    mkdirSync(src);
    for (const f of ['package.json', 'dist', 'scripts', 'native', 'binding.gyp', 'rootfs-scripts']) {
      cpSync(join(ROOT, f), join(src, f), { recursive: true, verbatimSymlinks: true });
    }
    execFileSync('node', ['scripts/pack-run-js.mjs', 'prepack'], { cwd: src });
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: src,
      encoding: 'utf8',
    });
    const [{ filename, files }] = JSON.parse(out);
    const paths = files.map((f: { path: string }) => f.path);
    expect(paths).toContain('dist/run.js');
    expect(paths).toContain('dist/run.cjs');
    expect(paths).toContain('dist/bundle/main.cjs');
    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', join(dir, filename), '-C', unpacked]);
    const pkg = join(unpacked, 'package');
    // What `npm install` builds (binding.gyp) is not in the tarball: the addon of this checkout stands in.
    mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
    cpSync(join(ROOT, 'build', 'Release', 'nsbox.node'), join(pkg, 'build', 'Release', 'nsbox.node'));
    expect(existsSync(join(pkg, 'dist', 'run.js'))).toBe(true);
    const run = (args: string[]) =>
      execFileSync(process.execPath, ['--', join(pkg, 'dist', 'run.js'), ...args], { env, encoding: 'utf8' });
    expect(run(['version'])).toBe('nsbox 0.1.0\n');
    expect(run(['ps', '--help'])).toMatch(/^Usage: nsbox ps/);
    expect(run([ROOTFS, 'echo', 'packed'])).toBe('packed\n');
  });
});
