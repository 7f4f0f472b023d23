// Capability names, Docker's default set, and --cap-add / --cap-drop the way Docker applies them.
import { readFileSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { fieldOf } from './fields.js';

/** Index = capability number (linux/capability.h). */
export const CAP_NAMES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** What Docker grants a container by default. */
export const DEFAULT_CAPS = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'NET_RAW',
  'SYS_CHROOT',
  'MKNOD',
  'AUDIT_WRITE',
  'SETFCAP',
];

let lastCap: number | undefined;

/** The highest capability this kernel knows. */
export function capLastCap(): number {
  if (lastCap === undefined) {
    try {
      lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
    } catch {
      lastCap = CAP_NAMES.length - 1;
    }
    lastCap = Math.min(lastCap, CAP_NAMES.length - 1);
  }
  return lastCap;
}

export function allCaps(): string[] {
  return CAP_NAMES.slice(0, capLastCap() + 1);
}

/** `sys_admin`, `CAP_SYS_ADMIN` and `SYS_ADMIN` are one name; ALL stays ALL. */
export function normalizeCap(name: string, flag: string): string {
  const n = String(name).toUpperCase().replace(/^CAP_/, '');
  if (n === 'ALL') return n;
  if (!(CAP_NAMES as readonly string[]).includes(n)) {
    throw new NsboxError(`{field}: unknown capability: ${name}`, { step: flag, field: fieldOf(flag) });
  }
  return n;
}

/**
 * Docker's rule: ALL in add is everything but the drops; ALL in drop is only the adds; else
 * defaults - drops + adds.
 */
export function resolveCaps(add: string[] = [], drop: string[] = [], privileged = false): string[] {
  if (privileged) return allCaps();
  const a = add.map((c) => normalizeCap(c, 'cap-add'));
  const d = drop.map((c) => normalizeCap(c, 'cap-drop'));
  let caps: string[];
  if (a.includes('ALL')) caps = allCaps().filter((c) => !d.includes(c));
  else if (d.includes('ALL')) caps = a;
  else caps = [...DEFAULT_CAPS.filter((c) => !d.includes(c)), ...a];
  return [...new Set(caps)];
}

export function capNumber(name: string): number {
  return (CAP_NAMES as readonly string[]).indexOf(name);
}

export function capMask(names: string[]): bigint {
  let m = 0n;
  for (const n of names) m |= 1n << BigInt(capNumber(n));
  return m;
}

/** The capabilities in a mask, named as in Docker's seccomp profiles: CAP_CHOWN, ... */
export function capNames(mask: bigint): string[] {
  return CAP_NAMES.filter((_, i) => (mask >> BigInt(i)) & 1n).map((n) => `CAP_${n}`);
}

const capLine = (status: string, line: string) =>
  BigInt(`0x${new RegExp(`${line}:\\s*([0-9a-f]+)`).exec(status)?.[1] ?? '0'}`);

/** A capability set line of /proc/self/status, e.g. CapBnd. */
export function ownCaps(line: 'CapEff' | 'CapPrm' | 'CapBnd'): bigint {
  return capLine(readFileSync('/proc/self/status', 'utf8'), line);
}

let usable: { key: string; caps: bigint } | undefined;

/**
 * What a child without a user namespace can have: our permitted set within the bounding set. Read once (the
 * kernel writes all of /proc/self/status for it), again only after our uids changed (process.setuid and the
 * like are how a Node process loses capabilities).
 */
export function ownUsableCaps(): bigint {
  const key = `${process.getuid?.()}:${process.geteuid?.()}`;
  if (usable?.key !== key) {
    const status = readFileSync('/proc/self/status', 'utf8');
    usable = { key, caps: capLine(status, 'CapPrm') & capLine(status, 'CapBnd') };
  }
  return usable.caps;
}
