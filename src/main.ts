#!/usr/bin/env node
// The nsbox CLI. `nsbox [run] [OPTIONS] ROOTFS CMD [ARG...]`; loads only what the command needs: every
// command, `run` too, is a dynamic import, which scripts/bundle-cli.mjs makes a file of its own in
// dist/bundle/ (started by dist/run.cjs, dist/run.js), read only when the command is used.
import { existsSync } from 'node:fs';
import { cliMessage, exitStatusOf, NsboxError } from './errors.js';
import { escapeText } from './cli/escape.js';
import { writeOut } from './cli/out.js';

const VERSION = '0.1.0';

type Subcommand = { command(name: string, argv: string[]): Promise<number> };

const runCli = () => import('./cli/run.js');

/** Container life-cycle commands, each imported only when used so that each stays quick to load. */
const SUBCOMMANDS: Record<string, () => Promise<Subcommand>> = {
  ps: () => import('./cli/ps.js'),
  list: () => import('./cli/ps.js'),
  inspect: () => import('./cli/ps.js'),
  top: () => import('./cli/ps.js'),
  logs: () => import('./cli/logs.js'),
  kill: () => import('./cli/signal.js'),
  stop: () => import('./cli/signal.js'),
  rm: () => import('./cli/rm.js'),
  prune: () => import('./cli/rm.js'),
  container: () => import('./cli/rm.js'),
  stats: () => import('./cli/stats.js'),
  exec: () => import('./cli/exec.js'),
  info: () => import('./cli/info.js'),
  network: () => import('./cli/network.js'),
  port: () => import('./cli/port.js'),
  images: () => import('./cli/images.js'),
  image: () => import('./cli/images.js'),
  rmi: () => import('./cli/images.js'),
  import: () => import('./cli/images.js'),
  pull: () => import('./cli/images.js'),
  export: () => import('./cli/export.js'),
  // Internal: a detached container's set-up and clean-up steps, run by its nsbox-monitor (native/monitor.c).
  'nsbox-setup': () => import('./cli/setup.js'),
  'nsbox-cleanup': () => import('./cli/cleanup.js'),
};

const COMMANDS = `
Commands (each has --help):
  run [OPTIONS] ROOTFS CMD...   run a container (the default command)
  ps, list                      list containers (-a, -q, --format json)
  inspect NAME                  a container's state as JSON
  top NAME                      its processes, with host PIDs and PIDs inside
  logs [-f] NAME                a detached container's output
  exec [OPTIONS] NAME CMD...    run a command inside a running container (or --target PID)
  kill [-s SIG] NAME            signal a container
  stop [-t SECONDS] NAME        SIGTERM, then SIGKILL
  rm [-f] NAME                  remove a stopped (or, with -f, running) container
  prune                         remove every stopped container (also: container prune)
  stats [NAME...]               live CPU, memory and pids
  info                          the cgroup hierarchy used for each controller
  network create|ls|inspect|rm  networks (CNI conflists) containers can join with --network NAME
  port NAME                     a container's published ports
  pull REF                      pull an image from a registry
  import FILE|-                 import a docker save / OCI archive or a root-filesystem tar
  images                        list images (-q, --format json)
  rmi [-f] IMAGE...             remove images
  image inspect|prune|...       more on images (nsbox image --help)
  export NAME > rootfs.tar      a running container's root filesystem as a tar
  version                       nsbox's version`;

const COMMAND_NAMES = ['run', 'version', ...Object.keys(SUBCOMMANDS).filter((c) => !c.startsWith('nsbox-'))];

/** Edit distance with transpositions (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i ? (j ? 0 : i) : j)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * `nsbox ROOTFS CMD` is `run` without the word: the first word must then be a directory, `host`, or
 * an option. A bare word that is none of these is a mistyped command, said as such.
 */
function unknownCommand(word: string): void {
  if (word.startsWith('-') || word === 'host' || /[/:.@]/.test(word) || existsSync(word)) return;
  const best = COMMAND_NAMES.map((c) => [c, distance(word, c)] as const).sort((x, y) => x[1] - y[1])[0];
  const hint =
    best[1] <= Math.max(1, Math.floor(word.length / 3))
      ? `; did you mean "${best[0]}"?`
      : ` (see nsbox --help; a root filesystem or image goes after "nsbox run")`;
  throw new NsboxError(`unknown command "${word}"${hint}`, { kind: 'spec' });
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    writeOut(`${(await runCli()).RUN_HELP}\n${COMMANDS}\n`);
    return 0;
  }
  if (argv.length === 1 && (argv[0] === 'version' || argv[0] === '--version' || argv[0] === '-V')) {
    writeOut(`nsbox ${VERSION}\n`);
    return 0;
  }
  if (argv[0] === 'run') return (await runCli()).runCommand(argv.slice(1), VERSION);
  if (Object.hasOwn(SUBCOMMANDS, argv[0] ?? '')) return (await SUBCOMMANDS[argv[0]]()).command(argv[0], argv.slice(1));
  if (argv[0] !== undefined) unknownCommand(argv[0]);
  return (await runCli()).runCommand(argv, VERSION);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    if (e instanceof NsboxError) {
      process.stderr.write(`nsbox: ${escapeText(cliMessage(e))}\n`);
      process.exitCode = exitStatusOf(e);
    } else {
      const text = String(e?.stack ?? e)
        .split('\n')
        .map(escapeText)
        .join('\n');
      process.stderr.write(`nsbox: internal error: ${text}\n`);
      process.exitCode = 125;
    }
  },
);
