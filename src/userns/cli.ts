// The run options of this concern: user namespace, maps, user, groups, capabilities.
import type { OptionDef } from '../cli/args.js';
import { NsboxError } from '../errors.js';
import type { IdentitySpec } from './identity.js';

export const IDENTITY_HELP = `      --userns           new user namespace: container root is an unprivileged host id
                         (always on without root: rootless)
      --uidmap C:H:S     container uids C.. are host uids H.., S of them (repeatable)
      --gidmap C:H:S     the same for gids (default: as --uidmap)
  -u, --user UID[:GID]   run as this user (names from the rootfs' /etc/passwd)
      --group-add GID    an extra supplementary group (repeatable)
      --cap-add CAP      add a capability to Docker's default set (repeatable; ALL)
      --cap-drop CAP     drop a capability (repeatable; ALL)
      --no-new-privileges=false
                         let setuid binaries and file capabilities gain privileges (dangerous)
      --privileged       every capability and no no_new_privs (dangerous)`;

export const IDENTITY_OPTIONS: OptionDef[] = [
  { long: 'userns' },
  { long: 'uidmap', value: 'multiple' },
  { long: 'gidmap', value: 'multiple' },
  { long: 'user', short: 'u', value: 'single' },
  { long: 'group-add', value: 'multiple' },
  { long: 'cap-add', value: 'multiple' },
  { long: 'cap-drop', value: 'multiple' },
  { long: 'no-new-privileges', value: 'optional' },
  { long: 'privileged' },
];

function bool(v: string | boolean, flag: string): boolean {
  if (v === true || v === 'true') return true;
  if (v === 'false') return false;
  throw new NsboxError(`invalid --${flag} value: ${v} (true or false)`);
}

/** The spec fields the options ask for. */
export function identityFromOptions(o: Record<string, string | string[] | boolean>): IdentitySpec {
  const list = (k: string) => o[k] as string[] | undefined;
  const uidMap = list('uidmap'),
    gidMap = list('gidmap');
  const spec: IdentitySpec = {
    user: o.user as string | undefined,
    groupAdd: list('group-add'),
    capAdd: list('cap-add'),
    capDrop: list('cap-drop'),
    privileged: !!o.privileged,
  };
  if (uidMap || gidMap) spec.userns = { uidMap, gidMap };
  else if (o.userns) spec.userns = true;
  if (o['no-new-privileges'] !== undefined)
    spec.noNewPrivileges = bool(o['no-new-privileges'] as string | boolean, 'no-new-privileges');
  return spec;
}
