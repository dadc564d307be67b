import { describe, expect, it } from 'vitest';
import { aggregateSeeds, meanEpochs, meanNote, missNote } from '../../src/profile/time-to-accuracy.js';

const run = (seed: number, seconds: number | null) => ({ seed, seconds, epochs: seconds === null ? null : 2 });

describe('time to accuracy over seeds, scored the MLPerf way', () => {
  it('drops the fastest and the slowest seed and averages the rest', () => {
    // reached: 3.0 (seed 1), 5.0 (2), 4.0 (3), 9.0 (4), 2.0 (5) -> drop 2.0 and 9.0 -> (3 + 5 + 4) / 3 = 4
    const t = aggregateSeeds(0.95, 40, [run(1, 3), run(2, 5), run(3, 4), run(4, 9), run(5, 2)]);
    expect(t.meanSeconds).toBe(4);
    expect(t.dropped).toEqual([5, 4]);
    expect(t.averaged).toEqual([1, 3, 2]);
    expect(t.misses).toBe(0);
    expect(missNote(t)).toBeNull();
    expect(meanNote(t)).toBe('mean of 3 seeds, fastest and slowest dropped');
  });

  it('counts a seed that missed as a miss, never as a time, and drops among the seeds that reached it', () => {
    // reached: 6, 2, 4 -> drop 2 and 6 -> 4; seeds 2 and 4 missed
    const t = aggregateSeeds(0.95, 40, [run(1, 6), run(2, null), run(3, 2), run(4, null), run(5, 4)]);
    expect(t.meanSeconds).toBe(4);
    expect(t.averaged).toEqual([5]);
    expect(t.misses).toBe(2);
    expect(missNote(t)).toBe('2 of 5 seeds missed 95.0% within 40 epochs');
  });

  it('averages every seed that reached the target when fewer than three did, and says so', () => {
    const t = aggregateSeeds(0.9, 3, [run(1, 1.5), run(2, null), run(3, 2.5)]);
    expect(t.meanSeconds).toBe(2);
    expect(t.dropped).toEqual([]);
    expect(meanNote(t)).toBe('mean of the 2 seeds that reached it (fewer than 3: none dropped)');
  });

  it('has no time when no seed reached the target', () => {
    const t = aggregateSeeds(0.99, 3, [run(1, null), run(2, null)]);
    expect(t.meanSeconds).toBeNull();
    expect(t.misses).toBe(2);
    expect(meanNote(t)).toBe('no seed reached 99.0%');
  });

  it('takes the epochs to the target over the same seeds as the mean time, for a what-if to multiply', () => {
    // by time: seed 5 (2 s, 30 epochs) and seed 4 (9 s, 12 epochs) dropped; seeds 1, 3, 2 kept: (24 + 26 + 22) / 3 = 24
    const epochs: Record<number, number> = { 1: 24, 2: 22, 3: 26, 4: 12, 5: 30 };
    const t = aggregateSeeds(0.95, 40, [run(1, 3), run(2, 5), run(3, 4), run(4, 9), run(5, 2)].map((s) => ({ ...s, epochs: epochs[s.seed]! })));
    expect(meanEpochs(t)).toBe(24);
    expect(meanEpochs(aggregateSeeds(0.99, 3, [run(1, null), run(2, null)]))).toBeNull();
  });
});
