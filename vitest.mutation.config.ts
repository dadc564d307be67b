import { defineConfig } from 'vitest/config';

// The tests Stryker runs against each mutant of the mutation scope (see stryker.config.json):
// in-process tests only (the local SGD reference suite among them, on the in-process group). Tests that spawn the CLI, worker threads or worker processes load the
// compiled dist/ tree, which never sees a mutant, and they are slow. The in-process group's
// equivalence suite is left out too: trainer.test.ts and reduce-and-step.test.ts run the same code
// over several ranks in a fraction of its time.
export default defineConfig({
  test: {
    include: [
      'test/model/**/*.test.ts',
      'test/optim/**/*.test.ts',
      'test/coordinator/reduce-and-step.test.ts',
      'test/coordinator/trainer*.test.ts',
      'test/coordinator/checkpoint-*.test.ts',
      'test/coordinator/local-sgd.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
