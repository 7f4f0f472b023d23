// `run`'s network options.
import type { OptionDef, Parsed } from '../cli/args.js';
import { parsePublish } from './ports.js';
import type { NetworkSpec } from './spec.js';

export const NETWORK_OPTIONS: OptionDef[] = [
  { long: 'network', value: 'single' },
  { long: 'net', value: 'single' },
  { long: 'publish', short: 'p', value: 'multiple' },
  { long: 'network-alias', value: 'multiple' },
  { long: 'dns', value: 'multiple' },
  { long: 'add-host', value: 'multiple' },
];

export const NETWORK_HELP = `Network (default none: only lo; see README "Networking"):
      --network MODE     none, bridge (nsbox's default network), NAME (nsbox network create),
                         host (the host's: dangerous), container:NAME (share its network), pasta,
                         slirp4netns
  -p, --publish [IP:]HOST:CONTAINER[/tcp|udp]
                         publish a port (repeatable; implies --network bridge, or pasta rootless)
      --network-alias N  another name on the network (repeatable)
      --dns IP           nameserver for /etc/resolv.conf (repeatable)
      --add-host NAME:IP an /etc/hosts line (repeatable)`;

export function networkFromOptions(o: Parsed['options']): NetworkSpec | undefined {
  const mode = (o.network ?? o.net) as string | undefined;
  const ports = ((o.publish as string[] | undefined) ?? []).map(parsePublish);
  const aliases = o['network-alias'] as string[] | undefined;
  const dns = o.dns as string[] | undefined;
  const addHosts = o['add-host'] as string[] | undefined;
  if (mode === undefined && !ports.length && !aliases && !dns && !addHosts) return undefined;
  return { mode, ports, aliases, dns, addHosts };
}
