/**
 * Why a worker sends its shard's MEAN gradient in fp16: a 1024-example SUM of large gradients
 * exceeds fp16's 65504, the mean does not. Real MNIST, the network the bench trains.
 */
import { describe, expect, it } from 'vitest';
import { ShardComputer } from '../../worker/compute.js';
import { decodeHalf, ErrorFeedbackEncoder } from '../../src/protocol/wire-format.js';
import { layoutFor, type NetworkSpec } from '../../src/model/spec.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';
import { realMnist, seededNetwork } from '../helpers/fixtures.js';
import { codeOf } from '../helpers/protocol.js';

const BIG: NetworkSpec = { sizes: [784, 256, 256, 10], activation: 'relu', cost: 'cross-entropy' };

describe('fp16 gradients of a batch-1024 shard', () => {
  it('784-256-256-10: the sum would overflow fp16, the mean sent and multiplied back is finite and close', () => {
    const kernels = createWasmKernels();
    // N(0,1) weights (not the scaled init): large activations, large gradients
    const { params } = seededNetwork(BIG, 3, kernels, 'gaussian');
    const train = realMnist().train;
    const indices = Uint32Array.from({ length: 1024 }, (_, i) => (i * 37) % train.count);
    const sums = new ShardComputer(BIG, kernels, 1024).computeIndexed(params, train, indices);
    const n = layoutFor(BIG).size;
    const sum = sums.grads.subarray(0, n);
    let largest = 0;
    for (const g of sum) largest = Math.max(largest, Math.abs(g));
    expect(largest).toBeGreaterThan(65504); // else this test would not show anything

    expect(codeOf(() => new ErrorFeedbackEncoder('fp16', n).encode('sum', sum))).toBe('DPT_ERR_NOT_FINITE');
    const bits = new ErrorFeedbackEncoder('fp16', n).encode('mean', sum, sums.count);
    const back = decodeHalf(new Float32Array(n), bits, 'f16', sums.count);
    let worst = 0, nonFinite = 0;
    const stepped = new Float32Array(n); // one SGD step, η = 0.1: w − (η/m) Σ ∇C_x
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(back[i]!)) nonFinite++;
      worst = Math.max(worst, Math.abs(back[i]! - sum[i]!) / Math.max(1, Math.abs(sum[i]!)));
      stepped[i] = params[i]! - (0.1 / sums.count) * back[i]!;
    }
    expect(nonFinite).toBe(0);
    expect(stepped.every(Number.isFinite)).toBe(true);
    expect(worst).toBeLessThan(2 ** -10); // within half an fp16 step, relative (absolute below 1)
  });
});
