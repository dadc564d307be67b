import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { describeGroupEquivalence } from './group-suite.js';

describeGroupEquivalence('inproc', async ({ spec, train, world, maxBatch }) =>
  new InProcessGroup(spec, createJsKernels(), train, world, maxBatch), {
  worlds: [1, 2, 3, 4],
  batches: [10, 7, 128],
  steps: 20,
  tolerance: 1e-6,
});
