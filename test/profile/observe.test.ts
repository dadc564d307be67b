import { describe, expect, it } from 'vitest';
import { jitterSpread } from '../../src/profile/observe.js';

describe('jitterSpread (the straggler term\'s step-to-step jitter)', () => {
  it('leaves out a slow spell every rank shares, keeps a step that is slow on its own', () => {
    // a spell: ten steps at 10 ms, ten at 20 ms, ten at 10 ms — no step is slow against its neighbours
    const spell = [...Array(10).fill(10), ...Array(10).fill(20), ...Array(10).fill(10)];
    const s = jitterSpread(spell);
    expect(s).toHaveLength(30);
    // against the run's median (10) half of the spell's steps would count as 2x; against their
    // neighbours at most the steps at the spell's edges differ
    expect(s.filter((r) => r !== 1).length).toBeLessThanOrEqual(4);
    // one slow step among steady ones stays in
    expect(jitterSpread([10, 10, 10, 30, 10, 10, 10]).at(-1)).toBe(3);
  });

  it('is empty for no steps and skips a non-positive level', () => {
    expect(jitterSpread([])).toEqual([]);
    expect(jitterSpread([0, 0, 0])).toEqual([]);
  });
});
