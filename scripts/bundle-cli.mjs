// Bundles the compiled CLI (dist/main.js and everything it imports) into one CommonJS file,
// dist/cli.cjs, started by dist/run.cjs (scripts/boot.cjs: from a V8 code cache), and points
// dist/run.js at that. Node starts a CommonJS file without its ES module
// loader and reads one file instead of ~50: `node dist/run.js` starts ~25 ms sooner.
// After a bare `tsc` (dist/main.js newer than the bundle) the bundle runs dist/main.js instead.
import { build } from 'esbuild';
import { chmod, copyFile, lstat, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

// Each module keeps its own import.meta.url, so paths it resolves against it stay right.
const importMetaUrl = {
  name: 'import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const url = `__nsboxUrl(${JSON.stringify(relative(dist, args.path))})`;
      return { contents: text.replaceAll('import.meta.url', url), loader: 'js' };
    });
  },
};

const banner = `
const __nsboxUrl = (f) => require('node:url').pathToFileURL(require('node:path').join(__dirname, f)).href;`;

/** One CommonJS file from a compiled entry point, written whole (temp file, then rename). */
async function bundle(entry, out, mode) {
  const tmp = join(dist, `${out}.${process.pid}.tmp`);
  await build({
    entryPoints: [join(dist, entry)],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    banner: { js: banner },
    plugins: [importMetaUrl],
    logLevel: 'warning',
  });
  if (mode) await chmod(tmp, mode);
  await rename(tmp, join(dist, out));
}

await bundle('main.js', 'cli.cjs');
// The default seccomp filter for Docker's capabilities on this machine, so that a run need not compile it.
const { prebuiltDefault } = await import(pathToFileURL(join(dist, 'seccomp', 'index.js')).href);
await writeFile(join(dist, 'seccomp-default.json'), JSON.stringify(prebuiltDefault()));
await rm(join(dist, 'cli.cjs.cache'), { force: true });
await copyFile(join(dirname(fileURLToPath(import.meta.url)), 'boot.cjs'), join(dist, 'run.cjs'));
await chmod(join(dist, 'run.cjs'), 0o755);
// dist/run.js links to run.cjs (no ES module loader at start); `npm pack` drops symlinks, so while
// it packs (prepack, then this build from prepare) it is a small module loading the same file
// (scripts/pack-run-js.mjs), which the build leaves in place; postpack links it again.
if (!(await lstat(join(dist, 'run.js')).catch(() => null))?.isFile()) {
  const link = join(dist, `run.js.${process.pid}.tmp`);
  await rm(link, { force: true });
  await symlink('run.cjs', link);
  await rename(link, join(dist, 'run.js'));
}

// nsbox-runtime (src/oci/main.ts), the OCI runtime: one file too, dist/nsbox-runtime.cjs, and
// dist/nsbox-runtime linking to it (the path podman's --runtime and containerd's runc-binary take).
await bundle(join('oci', 'main.js'), 'nsbox-runtime.cjs', 0o755);
const rtLink = join(dist, `nsbox-runtime.${process.pid}.tmp`);
await rm(rtLink, { force: true });
await symlink('nsbox-runtime.cjs', rtLink);
await rename(rtLink, join(dist, 'nsbox-runtime'));
