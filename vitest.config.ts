import { defineConfig } from 'vitest/config';

// Tests import the TypeScript sources directly; worker threads and worker processes are
// started from the compiled dist/ tree (Node 20 cannot load .ts as a worker), which
// `npm test` builds first through the "pretest" script.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
