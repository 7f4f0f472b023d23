// nsbox: Linux namespace sandboxes for Node.js.
export { Container, type ExitStatus } from './container.js';
export { NsboxError } from './errors.js';
export type { ContainerSpec } from './spec.js';
