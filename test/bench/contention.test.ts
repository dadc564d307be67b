import { describe, expect, it } from 'vitest';
import { computeContention, contentionRatios, kappaOf } from '../../bench/harness/contention.js';
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

  it('takes κ as the lower quartile of the ratios: a spell of outside load only raises some', () => {
    // two of three probes in a slow spell, as in one dpt bench run
    expect(kappaOf([1.10, 0.83, 1.05, 0.90, 1.56, 1.63, 1.55, 1.58, 1.67])).toBeCloseTo(1.05, 12);
    // contention in every round stays
    expect(kappaOf([1.31, 1.29, 1.35, 1.3, 1.9])).toBeCloseTo(1.3, 12);
    expect(kappaOf([0.8, 0.9])).toBe(1);
    expect(kappaOf([])).toBe(1);
  });

  it('is 1 on one core, with nothing to contend for', async () => {
    expect(await computeContention({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, cores: 1, shard: 64 })).toBe(1);
  });
});
