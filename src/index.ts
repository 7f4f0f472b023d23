/// <reference types="node" preserve="true" />
// nsbox: Linux namespace sandboxes for Node.js.
export {
  spawn,
  Sandbox,
  type PipedSandbox,
  type SandboxEvents,
  type SandboxSpec,
  type Result,
  type Status,
} from './sandbox/spawn.js';
export { run, type RunSpec, type RunResult } from './sandbox/run.js';
export { SandboxPool, type PoolSpec, type PoolRunOptions, type PoolSpawnOptions } from './sandbox/pool.js';
export type { ExecOptions } from './sandbox/exec.js';
export type { StdioOption } from './sandbox/stdio.js';
export { Container, type ExitStatus, type Usage } from './container.js';
export { NsboxError } from './errors.js';
export type { ContainerSpec, Namespaces } from './spec.js';
export { pull, importImage, images, type ImageRecord, type PullOptions, type PullProgress } from './images/library.js';
export { parseReference, type Reference } from './images/reference.js';
