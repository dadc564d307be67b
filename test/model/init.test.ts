/** Initialisation against the rng's Gaussian stream drawn by hand, in layout order. */
import { describe, expect, it } from 'vitest';
import { parseInit } from '../../src/config.js';
import { initParams, INIT_SCHEMES } from '../../src/model/init.js';
import { layoutFor } from '../../src/model/spec.js';
import { Rng } from '../../src/tensor/rng.js';

const layout = layoutFor({ sizes: [4, 3, 2], activation: 'sigmoid', cost: 'quadratic' });

describe('initParams', () => {
  it('gaussian: every parameter is the next N(0, 1) draw, tensors in layout order', () => {
    const params = new Float32Array(layout.size);
    initParams(params, layout, 'gaussian', new Rng(5));
    const rng = new Rng(5);
    expect(Array.from(params)).toEqual(Array.from({ length: layout.size }, () => Math.fround(rng.nextGaussian())));
  });

  it('scaled: the same draws, weights divided by the square root of their fan-in, biases left N(0, 1)', () => {
    const params = new Float32Array(layout.size);
    initParams(params, layout, 'scaled', new Rng(5));
    const rng = new Rng(5);
    const expected: number[] = [];
    for (const [count, fanIn] of [[12, 4], [3, 0], [6, 3], [2, 0]]) {
      for (let i = 0; i < count; i++) expected.push(Math.fround(rng.nextGaussian() * (fanIn ? 1 / Math.sqrt(fanIn) : 1)));
    }
    expect(Array.from(params)).toEqual(expected);
  });

  it('the --init flag offers exactly the schemes initParams knows', () => {
    expect(parseInit('gaussian')).toBe('gaussian');
    expect(parseInit('scaled')).toBe('scaled');
    for (const scheme of INIT_SCHEMES) expect(() => initParams(new Float32Array(layout.size), layout, scheme, new Rng(1))).not.toThrow();
  });
});
