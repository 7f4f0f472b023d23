// `nsbox run IMAGE ...`: the image pulled as --pull says, its config applied to the spec, and the
// overlay part added. Kept out of run.ts so that a run from a directory loads none of it.
import { NsboxError } from '../errors.js';
import type { ContainerSpec } from '../spec.js';
import type { StartPart } from '../plan/part.js';
import type { Parsed } from './args.js';
import { formatReference, parseReference } from '../images/reference.js';
import { imageSpec } from '../images/library.js';
import { Store, type ImageRecord } from '../images/store.js';

// The record ensureImage found, so that fromImage does not read the store's index a second time.
let ensured: { ref: string; img: ImageRecord } | undefined;

/** The image `ref` in the store, pulled first as `--pull` says. Progress goes to stderr. */
export async function ensureImage(ref: string, o: Parsed['options']): Promise<ImageRecord> {
  const img = await findOrPull(ref, o);
  ensured = { ref, img };
  return img;
}

async function findOrPull(ref: string, o: Parsed['options']): Promise<ImageRecord> {
  const policy = (o.pull as string | undefined) ?? 'missing';
  if (!['missing', 'always', 'never'].includes(policy))
    throw new NsboxError(`invalid --pull: ${policy} (missing, always or never)`);
  const store = new Store();
  const have = store.find(ref);
  if (have && policy !== 'always') return have;
  if (policy === 'never')
    throw new NsboxError(`image not found locally: ${ref} (pull it, or use --pull=missing)`, { step: 'image' });
  const r = parseReference(ref);
  const { pullShowing, pullOptions } = await import('./pull.js');
  if (!have) process.stderr.write(`Unable to find image '${formatReference(r)}' locally\n`);
  return pullShowing(ref, { ...pullOptions(o), store }, false, process.stderr);
}

/** The spec with the image's config applied, and the overlay part (src/images/library.ts). */
export function fromImage(
  spec: ContainerSpec,
  o: Parsed['options'],
  ref: string,
  removeOnExit: boolean,
): { spec: ContainerSpec; part: StartPart } {
  const record = ensured?.ref === ref ? ensured.img : undefined;
  return imageSpec(spec, ref, { entrypoint: o.entrypoint as string | undefined, removeOnExit, hint: '', record });
}
