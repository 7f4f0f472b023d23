// `nsbox pull REF`: placeholder until the registry client lands.
import { NsboxError } from '../errors.js';

export async function command(_name: string, _argv: string[]): Promise<number> {
  throw new NsboxError('pull is not implemented yet');
}
