#!/usr/bin/env node
// nsbox-runtime: the OCI runtime's entry (src/oci/cli.ts). Built into dist/oci/main.js, bundled into
// dist/nsbox-runtime.cjs (dist/nsbox-runtime links to it) by scripts/bundle-cli.mjs.
import { main, report } from './cli.js';

main(process.argv.slice(2))
  .catch(report)
  .then((code) => {
    // Exit now: a created container's pidfd watcher must not keep `create` alive.
    process.exit(code);
  });
