import { describe, expect, it } from 'vitest';
import { computeContention } from '../../src/profile/contention.js';
import { NIELSEN, realMnist } from '../helpers/fixtures.js';

describe('contention probe', () => {
  it('times the net\'s real training step on one thread alone and on two at once', async () => {
    const kappa = await computeContention({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, cores: 2, shard: 64, burstMs: 15, rounds: 3 });
    // two threads on two cores: at least as slow as one alone, and (even with the test runner's
    // other files sharing the cores) not slower than taking turns on one core several times over
    expect(kappa).toBeGreaterThanOrEqual(1);
    expect(kappa).toBeLessThan(6);
  });

  it('is 1 on one core, with nothing to contend for', async () => {
    expect(await computeContention({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, cores: 1, shard: 64 })).toBe(1);
  });
});
