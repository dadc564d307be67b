import { describe, expect, it } from 'vitest';
import { computeCurve } from '../../bench/harness/compute-curve.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';
import { NIELSEN, realMnist } from '../helpers/fixtures.js';

describe('compute curve probe', () => {
  it('times the net\'s real training step at every requested shard size (rounded up, once each)', () => {
    const curve = computeCurve({ spec: NIELSEN, kernels: createWasmKernels(), train: realMnist().train, shards: [64, 5, 64, 12.5], rounds: 3, warmupMs: 20 });
    expect(Object.keys(curve).map(Number)).toEqual([5, 13, 64]);
    for (const ms of Object.values(curve)) expect(ms).toBeGreaterThan(0);
  });
});
