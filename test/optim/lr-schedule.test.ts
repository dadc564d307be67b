/**
 * The learning-rate schedule against numbers worked out by hand: the scaled rate for each rule,
 * the warmup's steps, the step where it ends, and after.
 */
import { describe, expect, it } from 'vitest';
import { learningRate, scaledEta, warmupSteps, type LrSchedule } from '../../src/optim/lr-schedule.js';

const LINEAR: LrSchedule = { eta: 3, scale: 'linear', referenceBatch: 10, batch: 40, warmupEpochs: 0 };

describe('the scaled learning rate', () => {
  it('linear: eta x batch / reference (3 at batch 10 is 12 at batch 40)', () => {
    expect(scaledEta(LINEAR)).toBe(12);
    expect(scaledEta({ ...LINEAR, batch: 5 })).toBe(1.5);
  });

  it('sqrt: eta x sqrt(batch / reference) (3 at batch 10 is 6 at batch 40)', () => {
    expect(scaledEta({ ...LINEAR, scale: 'sqrt' })).toBe(6);
    expect(scaledEta({ ...LINEAR, scale: 'sqrt', batch: 90 })).toBe(9);
  });

  it('none: eta as given, whatever the batch', () => {
    expect(scaledEta({ ...LINEAR, scale: 'none' })).toBe(3);
  });

  it('without warmup every step has the scaled rate', () => {
    for (const step of [0, 1, 100]) expect(learningRate(step, 5, LINEAR)).toBe(12);
  });
});

describe('warmup', () => {
  // 2 epochs of 4 steps: the rate climbs from 3 to 12 by (12 - 3) / 8 = 1.125 a step
  const WARM: LrSchedule = { ...LINEAR, warmupEpochs: 2 };

  it('starts at the unscaled eta and grows by a constant each step', () => {
    expect(warmupSteps(WARM, 4)).toBe(8);
    expect([0, 1, 2, 3, 4, 7].map((t) => learningRate(t, 4, WARM))).toEqual([3, 4.125, 5.25, 6.375, 7.5, 10.875]);
  });

  it('reaches the scaled eta exactly at the first step after warmup and stays there', () => {
    expect(learningRate(8, 4, WARM)).toBe(12);
    expect(learningRate(9, 4, WARM)).toBe(12);
    expect(learningRate(1000, 4, WARM)).toBe(12);
  });

  it('ramps to the square-root rate with sqrt', () => {
    const sqrt = { ...WARM, scale: 'sqrt' as const }; // 3 → 6 over 8 steps: 0.375 a step
    expect([0, 4, 8].map((t) => learningRate(t, 4, sqrt))).toEqual([3, 4.5, 6]);
  });

  it('a fractional warmup is rounded to whole steps (1.5 epochs of 5 steps: 8 steps)', () => {
    const frac = { ...WARM, warmupEpochs: 1.5 };
    expect(warmupSteps(frac, 5)).toBe(8);
    expect(learningRate(7, 5, frac)).toBe(3 + 9 * (7 / 8));
    expect(learningRate(8, 5, frac)).toBe(12);
  });
});
