// `nsbox nsbox-cleanup ID` (internal): run by a detached container's nsbox-monitor once PID 1 has ended.
import { finish } from '../state/finish.js';
import { settled } from '../state/store.js';

export async function command(_name: string, argv: string[]): Promise<number> {
  if (argv.length !== 1) return 125;
  await finish(argv[0]);
  await settled();
  return 0;
}
