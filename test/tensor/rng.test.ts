import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.js';

describe('seeded rng', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const seq = (r: Rng) => Array.from({ length: 5 }, () => r.nextUint32());
    const sa = seq(a);
    expect(seq(b)).toEqual(sa);
    expect(seq(c)).not.toEqual(sa);
  });

  it('resumes exactly from a saved state, including the cached Gaussian', () => {
    const r = new Rng(7);
    r.nextGaussian();
    const state = r.getState();
    const next = [r.nextGaussian(), r.nextGaussian(), r.nextUint32()];
    const s = new Rng(0);
    s.setState(state);
    expect([s.nextGaussian(), s.nextGaussian(), s.nextUint32()]).toEqual(next);
  });

  it('draws Gaussians with mean 0 and variance 1, and uniform integers over the whole range', () => {
    const r = new Rng(1);
    let sum = 0, sq = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) { const g = r.nextGaussian(); sum += g; sq += g * g; }
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.abs(sq / n - 1)).toBeLessThan(0.02);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70_000; i++) counts[r.nextInt(7)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
  });

  it('shuffles into a permutation', () => {
    const a = Uint32Array.from({ length: 100 }, (_, i) => i);
    new Rng(3).shuffle(a);
    expect([...a].sort((x, y) => x - y)).toEqual([...Array(100).keys()]);
    expect(Array.from(a)).not.toEqual([...Array(100).keys()]);
  });
});
