// `nsbox network create|ls|inspect|rm`: networks are CNI conflists in nsbox's network directory
// (src/network/config.ts); the containers on one are found through their network records.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { table } from './ps.js';
import {
  bridgeOf,
  checkNetworkName,
  createNetwork,
  DEFAULT_NETWORK,
  listNetworks,
  networkDir,
  removeNetworkFile,
  requireNetwork,
  subnetsOf,
} from '../network/config.js';
import { allRecords, sweepStale } from '../network/record.js';
import type { ConfList } from '../network/cni.js';
import { removeForwardRules } from '../network/firewall.js';

const HELP = `Usage: nsbox network COMMAND

  create [--subnet CIDR]... [--ipv6] NAME
                                a bridge network (default subnet: the first free 10.89.N.0/24);
                                --ipv6 or an IPv6 --subnet: dual-stack (default fd89:0:0:N::/64 too)
  ls [-q]                       list networks
  inspect NAME...               the network's CNI configuration and its containers, as JSON
  rm NAME...                    remove networks no container uses (and their bridges)

Networks are CNI configuration lists in ${'$'}NSBOX_NETWORK_DIR, else /etc/nsbox/net.d (root) or
~/.config/nsbox/net.d; any NAME.conflist dropped there is a network too.`;

const ISOLATION = 'CNI firewall plugin rules (ingressPolicy: same-bridge)';

function members(name: string) {
  return allRecords().filter((r) => r.network === name);
}

/** The bridge and the firewall plugin's isolation rules for it (networks made before nsbox's own rules). */
function removeBridge(bridge: string): void {
  const quiet = { stdio: 'ignore' as const };
  if (existsSync(`/sys/class/net/${bridge}`)) {
    try {
      execFileSync('ip', ['link', 'del', bridge], quiet);
    } catch {
      /* removed meanwhile */
    }
  }
  const rules = [
    [
      'CNI-ISOLATION-STAGE-1',
      '-i',
      bridge,
      '!',
      '-o',
      bridge,
      '-m',
      'comment',
      '--comment',
      ISOLATION,
      '-j',
      'CNI-ISOLATION-STAGE-2',
    ],
    ['CNI-ISOLATION-STAGE-2', '-o', bridge, '-m', 'comment', '--comment', ISOLATION, '-j', 'DROP'],
  ];
  for (const r of rules) {
    try {
      execFileSync('iptables', ['-w', '-D', ...r], quiet);
    } catch {
      /* not there */
    }
  }
}

export async function command(_name: string, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub) throw new NsboxError('network needs a command: create, ls, inspect or rm (see nsbox network --help)');
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const { options: o, positionals } = parseArgs(
    rest,
    [
      { long: 'subnet', value: 'multiple' },
      { long: 'ipv6' },
      { long: 'quiet', short: 'q' },
      { long: 'help', short: 'h' },
    ],
    Infinity,
  );
  if (o.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  sweepStale();
  switch (sub) {
    case 'create': {
      if (positionals.length !== 1) throw new NsboxError('network create needs one NAME');
      const list = createNetwork(positionals[0], (o.subnet as string[] | undefined) ?? [], !!o.ipv6);
      process.stdout.write(`${list.name}\n`);
      return 0;
    }
    case 'ls':
    case 'list': {
      const nets = listNetworks();
      if (o.quiet) {
        process.stdout.write(nets.map((n) => `${n.name}\n`).join(''));
        return 0;
      }
      const rows = [['NAME', 'DRIVER', 'SUBNET', 'BRIDGE', 'CONTAINERS']];
      for (const n of nets) {
        rows.push([
          n.name,
          n.plugins[0].type,
          subnetsOf(n).join(',') || '-',
          bridgeOf(n) ?? '-',
          String(members(n.name).length),
        ]);
      }
      process.stdout.write(table(rows));
      return 0;
    }
    case 'inspect': {
      if (!positionals.length) throw new NsboxError('network inspect needs a network name');
      const out = positionals.map((name) => ({
        ...requireNetwork(name),
        file: `${networkDir()}/${name}.conflist`,
        containers: members(name).map((r) => ({
          id: r.id,
          name: r.name,
          address: r.address,
          ...(r.address6 ? { address6: r.address6 } : {}),
          aliases: r.aliases,
        })),
      }));
      process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
      return 0;
    }
    case 'rm':
    case 'remove': {
      if (!positionals.length) throw new NsboxError('network rm needs a network name');
      for (const name of positionals) {
        checkNetworkName(name);
        // A broken file can still be removed.
        let list: ConfList | null = null;
        try {
          list = requireNetwork(name);
        } catch (err) {
          if (!existsSync(`${networkDir()}/${name}.conflist`)) throw err;
        }
        const users = members(name);
        if (users.length) {
          const who = users.map((u) => u.name).join(', ');
          throw new NsboxError(`network ${name} is in use by container${users.length > 1 ? 's' : ''} ${who}`);
        }
        if (!removeNetworkFile(name) && name === DEFAULT_NETWORK)
          throw new NsboxError('the default network nsbox is built in: it cannot be removed');
        const bridge = list && bridgeOf(list);
        if (bridge) {
          removeBridge(bridge);
          removeForwardRules(bridge);
        }
        process.stdout.write(`${name}\n`);
      }
      return 0;
    }
    default:
      throw new NsboxError(`unknown network command: ${sub} (create, ls, inspect, rm)`);
  }
}
