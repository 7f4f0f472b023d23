// A network namespace bound to a file: made before the container, it outlives the container's
// processes so CNI's DEL can still enter it, and goes when the file is unmounted. Not `ip netns`:
// no dependency on iproute2 or its /run/netns conventions.
import { closeSync, openSync, rmSync, statSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import * as native from '../native.js';
import { CLONE, MNT_DETACH, MS } from '../native.js';

/**
 * The directory must exist (src/network/record.ts makes and checks it). unshare(CLONE_NEWNET) applies
 * to the calling thread only: this (Node's main) thread steps into a
 * new namespace, binds it onto `path`, and steps back, all synchronously, so no JS runs meanwhile.
 */
export function createNetns(path: string): void {
  closeSync(openSync(path, 'wx', 0o600));
  const home = openSync('/proc/thread-self/ns/net', 'r');
  let moved = false;
  try {
    native.unshare(CLONE.NEWNET);
    moved = true;
    native.mount('/proc/thread-self/ns/net', path, null, MS.BIND);
  } catch (e) {
    rmSync(path, { force: true });
    throw new NsboxError(`create the network namespace ${path}: ${(e as Error).message}`, { step: 'network' });
  } finally {
    try {
      if (moved) native.setns(home, CLONE.NEWNET);
    } finally {
      closeSync(home);
    }
  }
}

/**
 * Bind the network namespace of a process (a container in a user namespace of its own, held before
 * its command: its namespace is owned by that user namespace, made by its clone) to `path`, so that
 * the plugins can enter it and DEL can after the process is gone. Refused when it is our own
 * namespace: the plugins would configure the host's.
 */
export function bindNetns(pid: number, path: string): void {
  const ns = `/proc/${pid}/ns/net`;
  const theirs = statSync(ns),
    ours = statSync('/proc/thread-self/ns/net');
  if (theirs.ino === ours.ino && theirs.dev === ours.dev) {
    throw new NsboxError(`process ${pid} has no network namespace of its own`, { step: 'network' });
  }
  closeSync(openSync(path, 'wx', 0o600));
  try {
    native.mount(ns, path, null, MS.BIND);
  } catch (e) {
    rmSync(path, { force: true });
    throw new NsboxError(`bind the network namespace of ${pid} to ${path}: ${(e as Error).message}`, {
      step: 'network',
    });
  }
}

/** Unbind and remove the file (the namespace ends with its last user); a missing file is fine. */
export function removeNetns(path: string): void {
  try {
    native.umount(path, MNT_DETACH);
  } catch {
    /* not mounted (any more) */
  }
  rmSync(path, { force: true });
}
