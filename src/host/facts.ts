// What compiling a plan needs to know about the host, read once and passed in, so that compile() is
// a pure function of (spec, facts) and its output can be checked without root (test/plan).
import { lstatSync, readlinkSync } from 'node:fs';

/** A host system directory as it is: a directory to bind, or a symlink to copy (rootfs 'host'). */
export interface HostEntry {
  name: string;
  link?: string;
}

export interface HostFacts {
  /** /usr, /bin, /lib, /etc, ... of the host, for a 'host' root. */
  hostDirs: HostEntry[];
}

const HOST_DIRS = ['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'etc'];

function hostDirs(): HostEntry[] {
  const out: HostEntry[] = [];
  for (const name of HOST_DIRS) {
    try {
      const st = lstatSync(`/${name}`);
      if (st.isSymbolicLink()) out.push({ name, link: readlinkSync(`/${name}`) });
      else if (st.isDirectory()) out.push({ name });
    } catch {
      /* not on this host */
    }
  }
  return out;
}

let facts: HostFacts | undefined;

/** This host's facts, read on first use (once per process). */
export function hostFacts(): HostFacts {
  facts ??= { hostDirs: hostDirs() };
  return facts;
}
