// Bundles the compiled CLI (dist/main.js and everything it imports) into CommonJS files in dist/bundle/,
// one per command family, started by dist/run.cjs (scripts/boot.cjs), which dist/run.js links to.
// Node starts CommonJS without its ES module loader, and a command reads only what it uses: `ps` does
// not read the container start path, `run` does not read node-tar. How:
//   1. esbuild splits the ES modules at every dynamic import() (main.ts imports each command so):
//      an entry per command module, chunks for what entries share;
//   2. each output becomes a CommonJS module (import() becomes a require() boot.cjs resolves);
//   3. what an entry needs (itself, its static chunks, and what it may import later but for node-tar)
//      but for what is surely loaded when it is imported goes into one file named after the entry, as
//      functions boot.cjs calls once each, in the order require() asks for them.
// After a bare `tsc` (dist/main.js newer than the bundle) dist/run.cjs runs dist/main.js instead.
import { build, transform } from 'esbuild';
import { chmod, lstat, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

// Each module keeps its own import.meta.url, so paths it resolves against it stay right. Its
// createRequire(import.meta.url) (for Node's modules and the addon) becomes a require of the bundle's
// directory, dist/, where every compiled module's relative paths lead to the same files: node:module's
// createRequire and a URL each cost a module load at every start.
const importMetaUrl = {
  name: 'import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const file = relative(dist, args.path);
      const req = `__nsboxRequire(${JSON.stringify(dirname(file))})`;
      const url = `__nsboxUrl(${JSON.stringify(file)})`;
      const contents = text.replaceAll('createRequire(import.meta.url)', req).replaceAll('import.meta.url', url);
      return { contents, loader: 'js' };
    });
  },
};

// file:// + the path when it needs no escaping (what pathToFileURL would give), else pathToFileURL.
// A module under dist/ gets `require` itself, one deeper a require that takes Node's modules only. The
// addon is loaded with process.dlopen, by its path: require() would first read package.json (to see
// whether the request names the package itself), a JSON parse at every start.
const urlHelper = `const __nsboxUrl = (f) => {
  const p = require('node:path').join(__dirname, f);
  return /^[\\w./-]+$/.test(p) ? \`file://\${p}\` : require('node:url').pathToFileURL(p).href;
};
const __nsboxAddons = new Map();
const __nsboxRequire = (d) => (id) => {
  if (id.startsWith('node:')) return require(id);
  if (d !== '.') throw new Error(\`bundle: require(\${id}) from dist/\${d}\`);
  if (!id.endsWith('.node')) return require(id);
  const file = require('node:path').join(__dirname, id);
  let m = __nsboxAddons.get(file);
  if (!m) {
    m = { exports: {} };
    process.dlopen(m, file);
    __nsboxAddons.set(file, m);
  }
  return m.exports;
};`;

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
    banner: { js: `\n${urlHelper}` },
    plugins: [importMetaUrl],
    logLevel: 'warning',
  });
  if (mode) await chmod(tmp, mode);
  await rename(tmp, join(dist, out));
}

/** dist/bundle/: a file per entry of the split (see the top of this file). */
async function bundleCli() {
  const r = await build({
    entryPoints: { main: join(dist, 'main.js') },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: join(dist, 'bundle'),
    entryNames: '[name]',
    chunkNames: '[name]-[hash]',
    write: false,
    metafile: true,
    plugins: [importMetaUrl],
    logLevel: 'warning',
  });
  const name = (p) => basename(p).replace(/\.js$/, '');
  const outputs = new Map(); // name -> { code, imports, dynamic }
  for (const f of r.outputFiles) {
    const meta = r.metafile.outputs[relative(process.cwd(), f.path)] ?? r.metafile.outputs[f.path];
    if (!meta) throw new Error(`bundle-cli: no metafile entry for ${f.path}`);
    const imports = meta.imports.filter((i) => !i.external);
    // import('./x.js') becomes require('./x.js') in a promise: boot.cjs resolves it.
    const cjs = await transform(f.text.replace(/^#!.*/, ''), {
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      supported: { 'dynamic-import': false },
      sourcefile: name(f.path),
    });
    outputs.set(name(f.path), {
      code: cjs.code,
      // node-tar: read only when an archive is (a pull, an import, an export), not with every command.
      package: Object.keys(meta.inputs).some((i) => i.includes('node_modules/')),
      imports: imports.filter((i) => i.kind === 'import-statement').map((i) => name(i.path)),
      dynamic: imports.filter((i) => i.kind === 'dynamic-import').map((i) => name(i.path)),
    });
  }
  const closure = (start) => {
    const seen = new Set();
    const walk = (n) => {
      if (seen.has(n)) return;
      seen.add(n);
      for (const i of outputs.get(n).imports) walk(i);
    };
    walk(start);
    return seen;
  };
  // A command's file holds what it may import later too, so that a process reads no file after its
  // start (a monitor that runs for days outlives a rebuild or an upgrade of dist/); but not the code of
  // packages (node-tar), which only commands that read archives load, as they start.
  const withPackages = (n) => [...closure(n)].some((c) => outputs.get(c).package);
  const whole = (start) => {
    const seen = new Set();
    const walk = (n) => {
      for (const c of closure(n)) {
        if (seen.has(c)) continue;
        seen.add(c);
        if (c === 'main') continue; // the command table: a file each
        for (const d of outputs.get(c).dynamic) if (!withPackages(d)) walk(d);
      }
    };
    walk(start);
    return seen;
  };
  // What is surely loaded when an entry is imported: what every file that may import it came with.
  const entries = ['main'];
  for (const o of outputs.values()) for (const d of o.dynamic) if (!entries.includes(d)) entries.push(d);
  const all = new Set(outputs.keys());
  const loaded = new Map(entries.map((e) => [e, e === 'main' ? new Set() : all]));
  for (let changed = true; changed; ) {
    changed = false;
    for (const e of entries.slice(1)) {
      let now = null;
      for (const g of entries) {
        const full = new Set([...loaded.get(g), ...whole(g)]);
        if (![...whole(g)].some((n) => outputs.get(n).dynamic.includes(e))) continue;
        now = now === null ? full : new Set([...now].filter((n) => full.has(n)));
      }
      now ??= new Set();
      if (now.size !== loaded.get(e).size) {
        loaded.set(e, now);
        changed = true;
      }
    }
  }
  // The require('./NAME.js') of the output files, as boot.cjs resolves them: by name.
  for (const o of outputs.values()) o.code = o.code.replace(/require\("\.\/([\w-]+)\.js"\)/g, 'require("./$1")');
  const commands = commandFiles(outputs.get('main').code);
  // A command's file starts with main's parts too: boot.cjs reads one file, chosen by the command word.
  const direct = new Set(Object.values(commands));
  const tmp = join(dist, `bundle.${process.pid}.tmp`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  for (const entry of entries) {
    const own = [...whole(entry)].filter((n) => !loaded.get(entry).has(n));
    const parts = direct.has(entry) ? [...new Set([...whole('main'), ...own])] : own;
    const fns = parts.map(
      (n) => `define(${JSON.stringify(n)}, function (exports, require, module) {\n${outputs.get(n).code}});\n`,
    );
    const text = `(function (define, require, __dirname) {\n'use strict';\n${urlHelper}\n${fns.join('')}})`;
    await writeFile(join(tmp, `${entry}.cjs`), text);
  }
  const old = join(dist, `bundle.${process.pid}.old`);
  await rename(join(dist, 'bundle'), old).catch(() => {});
  await rename(tmp, join(dist, 'bundle'));
  await rm(old, { recursive: true, force: true });
  return commands;
}

/**
 * main's command table as files: { word: entry }, and '' for `run` (the default). Read from main's
 * code, `word: () => import('./cli/x.js')` as esbuild writes it; a build that finds no table fails.
 */
function commandFiles(main) {
  const load = '\\(\\) => Promise\\.resolve\\(\\)\\.then\\(\\(\\) => __toESM\\(require\\("\\./([\\w-]+)"\\)\\)\\)';
  const out = {};
  for (const m of main.matchAll(new RegExp(`^\\s*"?([\\w-]+)"?: ${load},?$`, 'gm'))) out[m[1]] = m[2];
  const run = new RegExp(`^var runCli = ${load};$`, 'm').exec(main);
  if (!run || !out.ps || !out.exec) throw new Error('bundle-cli: no command table found in main');
  out[''] = run[1];
  return out;
}

const commands = await bundleCli();
await rm(join(dist, 'cli.cjs'), { force: true }); // the single bundle of earlier builds
await rm(join(dist, 'cli.cjs.cache'), { force: true });
// The default seccomp filter for Docker's capabilities on this machine, so that a run need not compile it.
const { prebuiltDefault } = await import(pathToFileURL(join(dist, 'seccomp', 'index.js')).href);
await writeFile(join(dist, 'seccomp-default.json'), JSON.stringify(prebuiltDefault()));
// boot.cjs with the command table (written whole: a start meanwhile reads the old file or the new one).
const boot = await readFile(join(dirname(fileURLToPath(import.meta.url)), 'boot.cjs'), 'utf8');
const marker = 'const COMMANDS = {}; // written by scripts/bundle-cli.mjs';
if (!boot.includes(marker)) throw new Error('bundle-cli: boot.cjs has no command table to fill');
const runTmp = join(dist, `run.cjs.${process.pid}.tmp`);
await writeFile(runTmp, boot.replace(marker, `const COMMANDS = ${JSON.stringify(commands)};`), { mode: 0o755 });
await chmod(runTmp, 0o755);
await rename(runTmp, join(dist, 'run.cjs'));
// dist/run.js links to run.cjs (no ES module loader at start); `npm pack` drops symlinks, so while
// it packs (prepack, then this build from prepare) it is a small module loading the same file
// (scripts/pack-run-js.mjs), which the build leaves in place; postpack links it again.
if (!(await lstat(join(dist, 'run.js')).catch(() => null))?.isFile()) {
  const link = join(dist, `run.js.${process.pid}.tmp`);
  await rm(link, { force: true });
  await symlink('run.cjs', link);
  await rename(link, join(dist, 'run.js'));
}

// nsbox-runtime (src/oci/main.ts), the OCI runtime: one file, dist/nsbox-runtime.cjs, and
// dist/nsbox-runtime linking to it (the path podman's --runtime and containerd's runc-binary take).
await bundle(join('oci', 'main.js'), 'nsbox-runtime.cjs', 0o755);
const rtLink = join(dist, `nsbox-runtime.${process.pid}.tmp`);
await rm(rtLink, { force: true });
await symlink('nsbox-runtime.cjs', rtLink);
await rename(rtLink, join(dist, 'nsbox-runtime'));
