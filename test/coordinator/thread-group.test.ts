import { ThreadGroup } from '../../coordinator/thread-group.js';
import { describeGroupEquivalence } from './group-suite.js';

// Real worker threads running the compiled task (dist/worker/thread-task.js, built by pretest);
// with 2 or more workers rank 0 runs on the coordinator's thread, the others on the pool.
describeGroupEquivalence('threads', ({ spec, train, world, maxBatch }) =>
  ThreadGroup.start({ spec, kernels: 'js', train, world, maxBatch }), {
  worlds: [1, 2, 3, 4],
  batches: [10, 7, 128],
  steps: 20,
  tolerance: 1e-5,
});

// every rank on a pool thread, the coordinator's thread only publishing and reducing
describeGroupEquivalence('threads (coordinatorRank: false)', ({ spec, train, world, maxBatch }) =>
  ThreadGroup.start({ spec, kernels: 'js', train, world, maxBatch, coordinatorRank: false }), {
  worlds: [2, 3],
  batches: [10, 7],
  steps: 20,
  tolerance: 1e-5,
});
