import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests share the host's cgroups and CPUs: one file at a time keeps quota measurements honest.
    fileParallelism: false,
  },
});
