// A container's own copy-on-write layer in the image store (ROOT/containers/ID), and what the run
// path needs to tell an image argument from a directory. Small and free of heavy imports: the state
// code calls removeRwLayer whenever a container's entry goes.
import { chmodSync, lstatSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { NsboxError } from '../errors.js';

/** NSBOX_STORAGE_DIR, else /var/lib/nsbox for root, else $XDG_DATA_HOME/nsbox (~/.local/share/nsbox). */
export function storageRoot(): string {
  const env = process.env.NSBOX_STORAGE_DIR;
  if (env) {
    if (!env.startsWith('/')) throw new NsboxError(`NSBOX_STORAGE_DIR must be an absolute path: ${env}`);
    return env.replace(/\/+$/, '') || '/';
  }
  if (process.getuid?.() === 0) return '/var/lib/nsbox';
  const data = process.env.XDG_DATA_HOME || (process.env.HOME ? `${process.env.HOME}/.local/share` : '');
  if (!data) throw new NsboxError('no place for images: set XDG_DATA_HOME or HOME (or NSBOX_STORAGE_DIR)');
  return `${data}/nsbox`;
}

/** `run`'s ROOTFS argument names an image when it is neither 'host' nor a directory (nor a path: /, ./, ../). */
export function isImageArg(arg: string): boolean {
  if (arg === 'host' || arg === '' || /^\.{0,2}\//.test(arg) || arg === '.' || arg === '..') return false;
  try {
    return !statSync(arg).isDirectory();
  } catch {
    return true;
  }
}

/** Removes a container's upper, work and mount directories, if it had them. */
export function removeRwLayer(id: string): void {
  if (!/^[0-9a-f]{12}$/.test(id)) return;
  let root: string;
  try {
    root = storageRoot();
  } catch {
    return;
  }
  try {
    removeContainerDir(`${root}/containers/${id}`);
  } catch {
    /* rootless: files made as another id of the container (see Store.removeContainer) */
  }
}

/**
 * Removes ROOT/containers/ID. A container that wrote nothing leaves empty directories of a known
 * shape: those go by one rmdir each (a run's exit path); anything else by a recursive removal.
 */
export function removeContainerDir(dir: string): void {
  const gone = (f: () => void) => {
    try {
      f();
    } catch {
      /* not empty, or not there: the recursive removal below sees to it */
    }
  };
  // Most containers (a rootfs, not an image) never had one: one syscall says so.
  try {
    rmdirSync(dir);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
  }
  gone(() => unlinkSync(`${dir}/image`));
  // Overlay's own directories (work/work, and incompat/volatile in it) are mode 000: rootless, the
  // user makes them searchable first. The container cannot reach work/, so they are overlay's.
  const ovl = ['work/work/incompat/volatile', 'work/work/incompat', 'work/work'];
  if (process.geteuid?.() !== 0) {
    for (const d of [...ovl].reverse())
      gone(() => lstatSync(`${dir}/${d}`).isDirectory() && chmodSync(`${dir}/${d}`, 0o700));
  }
  for (const d of [...ovl, 'work', 'merged', 'lower', 'upper']) gone(() => rmdirSync(`${dir}/${d}`));
  try {
    rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The image's StopSignal for a container made from one (what `stop` sends first), or null. */
export function stopSignalOf(id: string): string | null {
  if (!/^[0-9a-f]{12}$/.test(id)) return null;
  try {
    const s = JSON.parse(readFileSync(`${storageRoot()}/containers/${id}/image`, 'utf8')).stopSignal;
    return typeof s === 'string' && s ? s : null;
  } catch {
    return null;
  }
}
