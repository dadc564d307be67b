import { describe, expect, it } from 'vitest';
import { computeContention, contentionRatios } from '../../src/profile/contention.js';
import { NIELSEN, realMnist } from '../helpers/fixtures.js';

describe('contention probe', () => {
  it('times the net\'s real training step on one thread alone and on two at once', async () => {
    const kappa = await computeContention({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, cores: 2, shard: 64, burstMs: 15, rounds: 3 });
    // two threads on two cores: at least as slow as one alone, and (even with the test runner's
    // other files sharing the cores) not slower than taking turns on one core several times over
    expect(kappa).toBeGreaterThanOrEqual(1);
    expect(kappa).toBeLessThan(6);
  });

  it('gives every round\'s ratio, for a long benchmark to pool its probes', async () => {
    const ratios = await contentionRatios({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, cores: 2, shard: 64, burstMs: 10, rounds: 4 });
    expect(ratios).toHaveLength(4);
    for (const r of ratios) expect(r).toBeGreaterThan(0);
  });

  it('is 1 on one core, with nothing to contend for', async () => {
    expect(await computeContention({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, cores: 1, shard: 64 })).toBe(1);
  });
});
