// Bundles the compiled CLI (dist/main.js and everything it imports) into one CommonJS file,
// dist/run.cjs, and points dist/run.js at it. Node starts a CommonJS file without its ES module
// loader and reads one file instead of ~50: `node dist/run.js` starts ~25 ms sooner.
// After a bare `tsc` (dist/main.js newer than the bundle) the bundle runs dist/main.js instead.
import { build } from 'esbuild';
import { readFile, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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

const banner = `const { statSync: __nsboxStat } = require('node:fs');
if (__nsboxStat(__dirname + '/main.js').mtimeMs > __nsboxStat(__filename).mtimeMs) { import('./main.js'); return; }
const __nsboxUrl = (f) => require('node:url').pathToFileURL(require('node:path').join(__dirname, f)).href;`;

const tmp = join(dist, `run.cjs.${process.pid}.tmp`);
await build({
  entryPoints: [join(dist, 'main.js')],
  outfile: tmp,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  banner: { js: banner },
  plugins: [importMetaUrl],
  logLevel: 'warning',
});
await rename(tmp, join(dist, 'run.cjs'));
const link = join(dist, `run.js.${process.pid}.tmp`);
await rm(link, { force: true });
await symlink('run.cjs', link);
await rename(link, join(dist, 'run.js'));
