import { describe, expect, it } from 'vitest';
import { Sgd } from '../../src/optim/sgd.js';
import { ParamLayout } from '../../src/tensor/layout.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';

// Two tensors: a 2-element weight (decays) and a 1-element bias (never decays).
const layout = new ParamLayout([
  { name: 'w', shape: [2], decays: true },
  { name: 'b', shape: [1], decays: false },
]);
const k = createJsKernels();

describe('SGD, Nielsen update rule', () => {
  it('plain: w <- w - (eta/m) * sum of gradients', () => {
    const sgd = new Sgd(layout, k, { eta: 3, momentum: 0, weightDecay: 0, trainSize: 100 });
    const w = Float32Array.from([1, -2, 0.5]);
    sgd.step(w, Float32Array.from([4, 8, -2]), 4); // m = 4: mean gradient [1, 2, -0.5]
    expect(Array.from(w)).toEqual([1 - 3, -2 - 6, 0.5 + 1.5]);
  });

  it('plain, on a gradient sum in two parts: the same bits as adding them first; refused with momentum or decay', () => {
    const sgd = new Sgd(layout, k, { eta: 3, momentum: 0, weightDecay: 0, trainSize: 100 });
    expect(sgd.plain).toBe(true);
    const a = Float32Array.from([0.1, 8.25, -2]); const b = Float32Array.from([3.7, -0.5, 1e-3]);
    const w1 = Float32Array.from([1, -2, 0.5]); const w2 = w1.slice();
    sgd.step(w1, Float32Array.from(a.map((x, i) => Math.fround(x + b[i]!))), 7);
    sgd.step(w2, a, 7, b);
    expect(Array.from(w2)).toEqual(Array.from(w1));
    expect(Array.from(a)).toEqual([0.1, 8.25, -2].map(Math.fround)); // the first part is not written
    for (const o of [{ momentum: 0.9, weightDecay: 0 }, { momentum: 0, weightDecay: 5 }]) {
      const other = new Sgd(layout, k, { eta: 3, trainSize: 100, ...o });
      expect(other.plain).toBe(false);
      expect(() => other.step(w1, a, 7, b)).toThrow(/needs plain SGD/);
    }
  });

  it('L2 weight decay: w <- (1 - eta*lambda/n) w - (eta/m) sum, biases not decayed', () => {
    const sgd = new Sgd(layout, k, { eta: 0.5, momentum: 0, weightDecay: 10, trainSize: 50 });
    const w = Float32Array.from([1, -2, 4]);
    sgd.step(w, Float32Array.from([2, 2, 2]), 2);
    // factor 1 - 0.5*10/50 = 0.9; mean gradient 1
    expect(w[0]).toBeCloseTo(0.9 * 1 - 0.5, 6);
    expect(w[1]).toBeCloseTo(0.9 * -2 - 0.5, 6);
    expect(w[2]).toBeCloseTo(4 - 0.5, 6);
  });

  it('momentum: v <- mu v - eta g; w <- w + v, over two steps', () => {
    const sgd = new Sgd(layout, k, { eta: 0.1, momentum: 0.9, weightDecay: 0, trainSize: 10 });
    const w = Float32Array.from([0, 0, 0]);
    const g = Float32Array.from([1, -1, 2]);
    sgd.step(w, g, 1);
    expect(Array.from(sgd.velocity!)).toEqual(Array.from(Float32Array.from([-0.1, 0.1, -0.2])));
    sgd.step(w, g, 1);
    // v2 = 0.9 * v1 - 0.1 g = -0.19 g; w2 = v1 + v2 = -0.29 g
    expect(w[0]).toBeCloseTo(-0.29, 6);
    expect(w[1]).toBeCloseTo(0.29, 6);
    expect(w[2]).toBeCloseTo(-0.58, 6);
  });

  it('without momentum keeps no velocity', () => {
    expect(new Sgd(layout, k, { eta: 1, momentum: 0, weightDecay: 0, trainSize: 1 }).velocity).toBeNull();
  });

  it('rejects a non-positive eta, momentum outside [0, 1) and an empty step', () => {
    expect(() => new Sgd(layout, k, { eta: 0, momentum: 0, weightDecay: 0, trainSize: 1 })).toThrow(/eta must be a positive number/);
    expect(() => new Sgd(layout, k, { eta: 1, momentum: 1, weightDecay: 0, trainSize: 1 })).toThrow(/momentum must be in \[0, 1\)/);
    const sgd = new Sgd(layout, k, { eta: 1, momentum: 0, weightDecay: 0, trainSize: 1 });
    expect(() => sgd.step(new Float32Array(3), new Float32Array(3), 0)).toThrow(/at least one example/);
  });
});

describe('SGD with eta changed between steps (a learning-rate schedule)', () => {
  const grads = () => Float32Array.from([0.3, -1.7, 2.2]);
  const start = () => Float32Array.from([1, -2, 0.5]);

  for (const o of [{ momentum: 0, weightDecay: 0 }, { momentum: 0.9, weightDecay: 5 }]) {
    it(`steps exactly as an optimizer built with the new eta (momentum ${o.momentum}, weight decay ${o.weightDecay})`, () => {
      const changed = new Sgd(layout, k, { eta: 3, trainSize: 100, ...o });
      const w1 = start();
      // one gradient buffer for both steps, as in training: the per-tensor runs built at eta 3 are reused
      const g = grads();
      changed.step(w1, g, 4);
      changed.setEta(0.25);
      changed.step(w1, g, 4);
      const built = new Sgd(layout, k, { eta: 3, trainSize: 100, ...o });
      const w2 = start();
      built.step(w2, grads(), 4);
      const second = new Sgd(layout, k, { eta: 0.25, trainSize: 100, ...o });
      if (built.velocity) second.velocity!.set(built.velocity);
      second.step(w2, grads(), 4);
      expect(Array.from(w1)).toEqual(Array.from(w2));
    });
  }

  it('on a gradient sum in two parts too', () => {
    const changed = new Sgd(layout, k, { eta: 3, momentum: 0, weightDecay: 0, trainSize: 100 });
    changed.setEta(0.5);
    const w = start();
    changed.step(w, Float32Array.from([2, 0, 0]), 2, Float32Array.from([2, 4, -2]));
    expect(Array.from(w)).toEqual([1 - 0.5 * 2, -2 - 0.5 * 2, 0.5 + 0.5]);
  });

  it('leaves the caller’s options object as it was, and refuses a rate that is not positive', () => {
    const options = { eta: 3, momentum: 0, weightDecay: 0, trainSize: 100 };
    const sgd = new Sgd(layout, k, options);
    sgd.setEta(1);
    expect(options.eta).toBe(3);
    expect(() => sgd.setEta(0)).toThrow(/eta must be a positive number/);
    expect(() => sgd.setEta(NaN)).toThrow(/eta must be a positive number/);
  });
});
