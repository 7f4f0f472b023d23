// `nsbox port NAME [PORT[/PROTO]]`: a container's published ports, as docker prints them.
import { NsboxError } from '../errors.js';
import { parseArgs } from './args.js';
import { find } from '../state/store.js';
import { readRecord } from '../network/record.js';

const PORT_HELP = `Usage: nsbox port NAME|ID [PORT[/tcp|udp]]

List the container's published ports: CONTAINERPORT/PROTO -> HOSTIP:HOSTPORT.`;

export async function command(_name: string, argv: string[]): Promise<number> {
  const { options: o, positionals } = parseArgs(argv, [{ long: 'help', short: 'h' }], Infinity);
  if (o.help) {
    process.stdout.write(`${PORT_HELP}\n`);
    return 0;
  }
  if (positionals.length < 1 || positionals.length > 2)
    throw new NsboxError('port needs a container name or id (and optionally a port)');
  const st = find(positionals[0]);
  const ports = readRecord(st.id)?.ports ?? [];
  const [want, wantProto = 'tcp'] = (positionals[1] ?? '').split('/');
  const shown = ports.filter((p) => !want || (String(p.container) === want && (p.protocol ?? 'tcp') === wantProto));
  if (want && !shown.length) throw new NsboxError(`no public port ${want}/${wantProto} published for ${st.name}`);
  for (const p of shown) {
    const line = `${p.container}/${p.protocol ?? 'tcp'} -> ${p.hostIp ?? '0.0.0.0'}:${p.host}`;
    process.stdout.write(`${want ? line.split(' -> ')[1] : line}\n`);
  }
  return 0;
}
