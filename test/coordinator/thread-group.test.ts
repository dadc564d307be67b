import { ThreadGroup } from '../../coordinator/thread-group.js';
import { describeGroupEquivalence } from './group-suite.js';

// Real worker threads running the compiled task (dist/worker/thread-task.js, built by pretest).
describeGroupEquivalence('threads', ({ spec, train, world, maxBatch }) =>
  ThreadGroup.start({ spec, kernels: 'js', train, world, maxBatch }), {
  worlds: [1, 2, 3, 4],
  batches: [10, 7, 128],
  steps: 20,
  tolerance: 1e-5,
});
