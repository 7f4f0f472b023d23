// npm pack drops symlinks, and dist/run.js is one (to dist/run.cjs, so that `node dist/run.js` starts
// without the ES module loader). For the packed tarball it becomes a small ES module that loads the
// same file; `postpack` puts the link back. Usage: node scripts/pack-run-js.mjs prepack|postpack
import { rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const runJs = join(dist, 'run.js');
const tmp = join(dist, `run.js.${process.pid}.tmp`);
if (process.argv[2] === 'prepack') {
  await writeFile(tmp, "#!/usr/bin/env node\n// Starts the nsbox CLI (see run.cjs).\nimport './run.cjs';\n", {
    mode: 0o755,
  });
} else {
  await rm(tmp, { force: true });
  await symlink('run.cjs', tmp);
}
await rename(tmp, runJs);
