#!/usr/bin/env -S node --
'use strict';
// dist/run.cjs: starts the bundled CLI (dist/bundle/, see scripts/bundle-cli.mjs). Each file there holds
// the modules of one command family as functions (a command's file main's too); require('./NAME') of a
// module not defined yet reads dist/bundle/NAME.cjs, so a command reads and compiles only its own file.
// Each file is compiled from a V8 code cache (NAME.cjs.cache) so that Node does not compile it again at
// every start: written,
// when dist/bundle/ is writable, by the first run that finds it missing or stale (V8 checks it against
// the source and its own version); otherwise the CLI simply compiles as usual.
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, 'bundle');
// After a bare `tsc` (dist/main.js newer than the bundle), run the compiled modules instead.
let bundleTime = 0;
try {
  bundleTime = fs.statSync(path.join(dir, 'main.cjs')).mtimeMs;
} catch { /* not bundled */ }
if (fs.statSync(path.join(__dirname, 'main.js')).mtimeMs > bundleTime) {
  import(require('node:url').pathToFileURL(path.join(__dirname, 'main.js')).href);
  return;
}

const vm = require('node:vm');
// This file's own require: it resolves from dist/ as the compiled modules would (node:module's
// createRequire would load Node's ES module loader at every start).
const nodeRequire = require;
const defs = new Map();
const modules = new Map();
const uncached = [];

function define(name, fn) {
  if (!defs.has(name)) defs.set(name, fn);
}

function loadFile(name) {
  const file = path.join(dir, `${name}.cjs`);
  const source = fs.readFileSync(file, 'utf8');
  let cachedData;
  try {
    cachedData = fs.readFileSync(`${file}.cache`);
  } catch { /* first run */ }
  const script = new vm.Script(source, { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) uncached.push({ file, script });
  script.runInThisContext()(define, nodeRequire, __dirname);
}

function bundleRequire(id) {
  if (!id.startsWith('./')) return nodeRequire(id);
  const name = id.slice(2);
  let m = modules.get(name);
  if (m) return m.exports;
  if (!defs.has(name)) loadFile(name);
  m = { exports: {} };
  modules.set(name, m);
  defs.get(name).call(m.exports, m.exports, bundleRequire, m);
  return m.exports;
}

// After the command, so that it does not delay it, and with the functions it compiled, so that the next
// run of it finds them compiled. Not after a failure, a --help or a `run -d` (its container is built by
// the monitor's set-up step): those compile less than a command does, and a cache once written stays.
const HELP = new Set(['--help', '-h']);
const DETACH = new Set(['-d', '--detach']);
process.once('exit', (code) => {
  if (uncached.length === 0 || code !== 0 || process.argv.some((a) => HELP.has(a))) return;
  if (!process.argv.includes('nsbox-setup') && process.argv.some((a) => DETACH.has(a))) return;
  for (const { file, script } of uncached) {
    const tmp = `${file}.cache.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, `${file}.cache`);
    } catch {
      try { fs.unlinkSync(tmp); } catch { /* not written */ }
    }
  }
});

// The command's file first: main's parts and the command's, so that a start reads one file. Which
// file a command word leads to is main's table (src/main.ts), as the build found it; `version` needs
// main only, anything else not in the table is `run`'s (nsbox ROOTFS CMD, or main's error for it).
const COMMANDS = {}; // written by scripts/bundle-cli.mjs
const VERSION = new Set(['version', '--version', '-V']);
const args = process.argv.slice(2);
let first = Object.hasOwn(COMMANDS, args[0] ?? '') && args[0] ? COMMANDS[args[0]] : COMMANDS[''];
if (args.length === 1 && VERSION.has(args[0])) first = 'main';
try {
  loadFile(first ?? 'main');
} catch (e) {
  if (e.code !== 'ENOENT') throw e; // rebuilt meanwhile: main reads what it needs
}
bundleRequire('./main');
