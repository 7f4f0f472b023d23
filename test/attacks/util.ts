// Shared set-up of the hostile-container suite: a private busybox rootfs with the probe tool
// (test/tools/probe.c) and the leak check around every test. Each attack runs in a default
// container (no options) unless its test says otherwise.
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { expectNothingLeft, nsbox, snapshot, type CliResult } from '../helpers.js';
import { probeRootfs, type ProbeRoot } from '../tools/probe.js';

export function hostileSuite(): {
  root: () => string;
  probe: () => string;
  run: (script: string, opts?: string[]) => Promise<CliResult>;
} {
  let p: ProbeRoot;
  let before: ReturnType<typeof snapshot>;
  beforeAll(() => {
    p = probeRootfs();
  });
  afterAll(() => p?.cleanup());
  beforeEach(() => {
    before = snapshot();
  });
  afterEach(async () => {
    await expectNothingLeft(before);
  });
  return {
    root: () => p.root,
    probe: () => p.probe,
    run: (script, opts = []) => nsbox([...opts, p.root, 'sh', '-c', script]),
  };
}

/** Lines of output as an object: "key value..." -> { key: "value..." }. */
export function answers(out: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const line of out.trim().split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) o[line.slice(0, sp)] = line.slice(sp + 1);
  }
  return o;
}
