import { describe, expect, it } from 'vitest';
import { GAP_FACTOR, GAPS, SpinBudget } from '../../worker/spin-budget.js';

describe('spin budget', () => {
  it('polls up to the cap until a gap has been seen, and never with a cap of 0', () => {
    expect(new SpinBudget(3).ms).toBe(3);
    const off = new SpinBudget(0);
    off.record(0.1);
    expect(off.ms).toBe(0);
  });

  it('polls a few times the median of the recent gaps, capped', () => {
    const b = new SpinBudget(3);
    for (const g of [0.1, 0.12, 0.08]) b.record(g);
    expect(b.ms).toBeCloseTo(GAP_FACTOR * 0.1, 12);
    for (let i = 0; i < GAPS; i++) b.record(2);
    expect(b.ms).toBe(3); // 4 × 2 ms, capped at 3
  });

  it('is not stretched by one long pause among the recent gaps (an evaluation, another configuration\'s turn)', () => {
    const b = new SpinBudget(3);
    for (let i = 0; i < GAPS - 1; i++) b.record(0.2);
    b.record(40);
    expect(b.ms).toBeCloseTo(GAP_FACTOR * 0.2, 12);
    // the window slides: older gaps drop out
    for (let i = 0; i < GAPS; i++) b.record(0.05);
    expect(b.ms).toBeCloseTo(GAP_FACTOR * 0.05, 12);
  });
});
