// A strict option parser for commands shaped like `nsbox [OPTIONS] ROOTFS CMD [ARG...]`:
// options stop at the first positional, so the command's own options pass through untouched.
import { NsboxError } from '../errors.js';

export interface OptionDef {
  long: string;
  short?: string;
  /** Takes a value; 'multiple' collects every occurrence; 'optional' takes one only as `--opt=VALUE`. */
  value?: 'single' | 'multiple' | 'optional';
}

export interface Parsed {
  options: Record<string, string | string[] | boolean>;
  positionals: string[];
}

export function parseArgs(argv: string[], defs: OptionDef[], positionalsBeforeRest = 1): Parsed {
  const byLong = new Map(defs.map((d) => [d.long, d]));
  const byShort = new Map(defs.filter((d) => d.short).map((d) => [d.short!, d]));
  const options: Parsed['options'] = {};
  const positionals: string[] = [];
  let i = 0;
  const set = (d: OptionDef, v: string | true) => {
    if (d.value === 'multiple') ((options[d.long] ??= []) as string[]).push(v as string);
    else if (d.value === 'single' && options[d.long] !== undefined) {
      throw new NsboxError(`option --${d.long} given twice`);
    } else options[d.long] = v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (positionals.length >= positionalsBeforeRest) break;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    let def: OptionDef | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (eq >= 0) inline = a.slice(eq + 1);
      def = byLong.get(name);
      if (!def) throw new NsboxError(`unknown option: --${name} (see --help)`);
    } else {
      // Bundled flags: -it is -i -t; one that takes a value ends the bundle (-dti, -e K=V, -eK=V).
      let k = 1;
      def = byShort.get(a[k]);
      while (def && !def.value && k + 1 < a.length) {
        set(def, true);
        def = byShort.get(a[++k]);
      }
      if (!def) throw new NsboxError(`unknown option: -${a[k]} (see --help)`);
      if (a.length > k + 1) inline = a.slice(k + 1);
    }
    if (!def.value || (def.value === 'optional' && inline === undefined)) {
      if (inline !== undefined) throw new NsboxError(`option --${def.long} takes no value`);
      set(def, true);
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new NsboxError(`option --${def.long} needs a value`);
    set(def, v);
  }
  // Not push(...rest): a spread of 150,000 arguments overflows the stack.
  for (; i < argv.length; i++) positionals.push(argv[i]);
  return { options, positionals };
}
