import { describeGroupEquivalence } from './group-suite.js';
import { wsGroupWithWorkers } from './ws-workers.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';

// Real worker processes on 127.0.0.1, each with its own kernels and (local) its own MNIST copy.
// Batch 10 and 7 both give uneven shards over 3 ranks; larger batches only cost time here (the
// bench runs 128 and 1024).
describeGroupEquivalence('ws --data local', (a) => wsGroupWithWorkers({ ...a, data: 'local' }), {
  worlds: [1, 2, 3], batches: [10], steps: 20, tolerance: 1e-5,
});
// the ship suite also receives the gradients into a wasm engine's shared memory, as `dpt train` does
describeGroupEquivalence('ws --data ship', (a) => wsGroupWithWorkers({ ...a, data: 'ship', coordinatorKernels: createWasmKernels() }), {
  worlds: [1, 2, 3], batches: [7], steps: 20, tolerance: 1e-5,
});
// rank 0 on the coordinator (what dpt launch does by default), ranks 1..N-1 worker processes
describeGroupEquivalence('ws, the coordinator computing rank 0', (a) => wsGroupWithWorkers({ ...a, data: 'local', coordinatorRank: true }), {
  worlds: [2, 3], batches: [10], steps: 20, tolerance: 1e-5,
});
