/**
 * The thread group on a coordinator engine with shared memory (wasm): the gradient slots live in
 * the coordinator's engine memory and the threads read the coordinator's parameters in place.
 * Still exactly single-node's computation: bit-identical with one worker, within float32 rounding
 * of the shard sums with more.
 */
import { describe, expect, it } from 'vitest';
import { maxAbsDiff, runSteps, type StepsPlan } from '../../coordinator/equivalence.js';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { ThreadGroup } from '../../coordinator/thread-group.js';
import { slice } from '../../src/data/mnist.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';
import { DEEP_RELU, realMnist, seededNetwork } from '../helpers/fixtures.js';

describe('threads on a shared-memory coordinator engine', () => {
  const train = slice(realMnist().train, 0, 601);

  for (const [world, batch, tolerance] of [[1, 128, 0], [2, 128, 1e-5], [3, 7, 1e-5]] as const) {
    it(`${world} workers, batch ${batch}: parameters read in place, slots reduced in place, ${tolerance === 0 ? 'bit-identical to' : 'within 1e-5 of'} single-node`, async () => {
      const { network, params } = seededNetwork(DEEP_RELU, 11, createWasmKernels(), 'scaled');
      const plan: StepsPlan = {
        network, initialParams: params, train, batch, steps: 12, orderSeed: 5, shuffle: true,
        sgd: { eta: 0.1, momentum: 0, weightDecay: 0 },
      };
      const reference = await runSteps(new InProcessGroup(DEEP_RELU, network.kernels, train, 1, batch), plan);
      const group = await ThreadGroup.start({ spec: DEEP_RELU, kernels: 'wasm', coordinatorKernels: network.kernels, train, world, maxBatch: batch });
      try {
        // runSteps steps a buffer of the same engine, allocated like this one
        expect(group.readsInPlace(network.allocParams())).toBe(true);
        const distributed = await runSteps(group, plan);
        expect(maxAbsDiff(reference, distributed)).toBeLessThanOrEqual(tolerance);
        expect(maxAbsDiff(reference, params)).toBeGreaterThan(1e-3);
        // the gradient slots are buffers of the coordinator's engine: its reduction adds them in place
        const results = await group.computeStep({ step: 99, params: distributed, indices: Uint32Array.from({ length: batch }, (_, i) => i) });
        for (const r of results) expect(r.grads.buffer).toBe(distributed.buffer);
      } finally {
        await group.close();
      }
    });
  }

  it('copies parameters it cannot read in place (another engine\'s buffer, a plain array)', async () => {
    const wasm = createWasmKernels();
    const group = await ThreadGroup.start({ spec: DEEP_RELU, kernels: 'js', coordinatorKernels: wasm, train, world: 2, maxBatch: 10 });
    try {
      const size = seededNetwork(DEEP_RELU, 11, wasm).params.length;
      expect(group.readsInPlace(wasm.alloc(size))).toBe(true);
      expect(group.readsInPlace(createWasmKernels().alloc(size))).toBe(false);
      expect(group.readsInPlace(new Float32Array(size))).toBe(false);
      expect(group.readsInPlace(wasm.alloc(size + 1))).toBe(false);
    } finally {
      await group.close();
    }
    // a js coordinator engine shares nothing: everything goes through the group's own buffers
    const plain = await ThreadGroup.start({ spec: DEEP_RELU, kernels: 'js', coordinatorKernels: createJsKernels(), train, world: 2, maxBatch: 10 });
    try {
      expect(plain.readsInPlace(createJsKernels().alloc(seededNetwork(DEEP_RELU, 11).params.length))).toBe(false);
    } finally {
      await plain.close();
    }
  });
});
