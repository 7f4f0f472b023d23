// `nsbox info`: the kernel, and where each cgroup controller nsbox uses comes from on this host.
import { release } from 'node:os';
import { NsboxError } from '../errors.js';
import { CONTROLLERS, describeMode, hierarchies, type Controller } from '../cgroups/hierarchy.js';
import { PARENT } from '../cgroups/cgroup.js';
import { parseArgs } from './args.js';

const INFO_HELP = `Usage: nsbox info [--format text|json]

The kernel, the cgroup hierarchy nsbox uses for quotas (v2, v1, or mixed), and for each
controller the hierarchy it comes from and where containers' cgroups are made.`;

/** What v2 provides for controllers that only v1 has by name. */
const V2_CORE: Partial<Record<Controller, string>> = { cpuacct: 'cpu.stat', freezer: 'cgroup.kill' };

export async function command(_name: string, argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(
    argv,
    [
      { long: 'format', value: 'single' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) {
    process.stdout.write(`${INFO_HELP}\n`);
    return 0;
  }
  if (positionals.length) throw new NsboxError(`info takes no arguments: ${positionals[0]}`);
  const format = (o.format as string | undefined) ?? 'text';
  if (format !== 'text' && format !== 'json') throw new NsboxError(`invalid --format: ${format} (text or json)`);
  const h = hierarchies();
  const rows = CONTROLLERS.map((c) => {
    const hier = h.byController[c] ?? (h.v2 && V2_CORE[c] && h.byController.memory === h.v2 ? h.v2 : undefined);
    return {
      controller: c,
      hierarchy: hier ? `v${hier.version}` : 'none',
      parent: hier ? `${hier.base}/${PARENT}` : null,
      note: hier?.version === 2 && V2_CORE[c] ? V2_CORE[c] : undefined,
    };
  });
  const mode = describeMode(h);
  let why = '';
  if (h.v2 && mode === 'v1') {
    const offers = h.v2.controllers.join(', ') || 'no controllers';
    why = ` (cgroup2 at ${h.v2.mount} offers ${offers}; cpu, memory and pids come from v1)`;
  }
  if (format === 'json') {
    const info = { kernel: release(), cgroup: mode, cgroup2: h.v2?.mount ?? null, controllers: rows };
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    return 0;
  }
  const lines = [`kernel: ${release()}`, `cgroup: ${mode}${why}`, ''];
  const w = Math.max(...rows.map((r) => r.controller.length));
  for (const r of rows) {
    lines.push(
      `${r.controller.padEnd(w)}  ${r.hierarchy.padEnd(4)}  ${r.parent ?? '-'}${r.note ? `  (${r.note})` : ''}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
