import { describe, expect, it } from 'vitest';
import { CeilingProbe, computeCeiling } from '../../bench/harness/ceiling.js';
import { NIELSEN, realMnist } from '../helpers/fixtures.js';

describe('ceiling probe (real threads computing the net\'s training step)', () => {
  it('times the whole batch on one thread and half of it on each of two threads in lockstep', async () => {
    const c = await computeCeiling({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, batch: 256, world: 2, burstMs: 20, rounds: 3 });
    expect(c.singleMs).toBeGreaterThan(0);
    expect(c.lockstepMs).toBeGreaterThan(0);
    // half the batch per thread; the test runner's other files share the cores, so only bounds
    expect(c.speedup).toBeGreaterThan(0.2);
    expect(c.speedup).toBeLessThan(2.5);
  });

  it('with one rank, lockstep is the single thread\'s work again: about 1x', async () => {
    const probe = await CeilingProbe.start({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, batch: 128, world: 1, burstMs: 20 });
    try {
      const c = await probe.measure(5);
      expect(c.speedup).toBeGreaterThan(0.5);
      expect(c.speedup).toBeLessThan(2);
      // measured again on the same threads
      expect((await probe.measure(1)).singleMs).toBeGreaterThan(0);
    } finally {
      await probe.close();
    }
  });

  it('refuses a world or batch that is not a positive integer', async () => {
    await expect(CeilingProbe.start({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, batch: 128, world: 0 })).rejects.toThrow(/world must be a positive integer/);
    await expect(CeilingProbe.start({ spec: NIELSEN, kernels: 'wasm', train: realMnist().train, batch: 0, world: 2 })).rejects.toThrow(/batch must be a positive integer/);
  });
});
