#!/usr/bin/env -S node --
'use strict';
// dist/run.cjs: starts the bundled CLI (dist/cli.cjs) from a V8 code cache, so that Node does not
// compile its 200 KB again at every start (~8 ms here). The cache is written next to the bundle by
// the first run that finds it missing or stale (V8 checks it against the source and its own
// version), when that directory is writable; otherwise the CLI simply compiles as usual.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createRequire } = require('node:module');

const file = path.join(__dirname, 'cli.cjs');
// After a bare `tsc` (dist/main.js newer than the bundle), run the compiled modules instead.
if (fs.statSync(path.join(__dirname, 'main.js')).mtimeMs > fs.statSync(file).mtimeMs) {
  import(require('node:url').pathToFileURL(path.join(__dirname, 'main.js')).href);
  return;
}
const cacheFile = `${file}.cache`;
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch { /* first run */ }
const source = fs.readFileSync(file, 'utf8').replace(/^#!.*/, '');
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: file,
  cachedData,
});
if (cachedData === undefined || script.cachedDataRejected) {
  // After the run, so that the functions it compiled are in the cache too.
  process.once('exit', () => {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {
      try { fs.unlinkSync(tmp); } catch { /* not written */ }
    }
  });
}
const mod = { exports: {} };
script.runInThisContext()(mod.exports, createRequire(file), mod, file, __dirname);
