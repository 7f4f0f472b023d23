// NSBOX_NET_TRACE=1: each step of a network's set-up and teardown, with its time, on stderr (for
// bench/network.js and for finding where a start's time goes).
const on = !!process.env.NSBOX_NET_TRACE;

export function traced<T>(what: string, fn: () => T): T {
  if (!on) return fn();
  const t0 = performance.now();
  try {
    return fn();
  } finally {
    process.stderr.write(`nsbox-net: ${what} ${(performance.now() - t0).toFixed(2)} ms\n`);
  }
}
