/**
 * The optimizer on a network's layout, where weights (decayed) and biases (not) alternate, against
 * the update rule computed by hand; and the options it refuses.
 */
import { describe, expect, it } from 'vitest';
import { layoutFor } from '../../src/model/spec.js';
import { Sgd, type SgdOptions } from '../../src/optim/sgd.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';
import type { Kernels } from '../../src/tensor/kernels.js';

// layers.0.weight [1, 2], layers.0.bias [1], layers.1.weight [1, 1], layers.1.bias [1]
const layout = layoutFor({ sizes: [2, 1, 1], activation: 'sigmoid', cost: 'quadratic' });
const IS_WEIGHT = [true, true, false, true, false];
const k = createJsKernels();
const ENGINES: [string, Kernels][] = [['js', k], ['wasm', createWasmKernels()]];

/** A buffer in the engine's own memory, as the trainer allocates them. */
function buffer(engine: Kernels, values: number[]): Float32Array {
  const b = engine.alloc(values.length);
  b.set(values);
  return b;
}

/** w ← w + v, v ← μv − η((1/m)Σg + (λ/n)w) for weights, without the λ term for biases (v = 0 when μ = 0: plain SGD). */
function byHand(o: SgdOptions, w: number[], v: number[], gradSum: number[], m: number): void {
  for (let i = 0; i < w.length; i++) {
    const g = gradSum[i]! / m + (IS_WEIGHT[i] ? (o.weightDecay / o.trainSize) * w[i]! : 0);
    v[i] = o.momentum * v[i]! - o.eta * g;
    w[i] = w[i]! + v[i]!;
  }
}

function expectClose(actual: Float32Array, expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, 5));
}

describe('SGD on a network layout', () => {
  for (const [name, engine] of ENGINES) {
    it(`${name}: weight decay shrinks every weight by (1 − ηλ/n) and no bias`, () => {
      const o = { eta: 0.5, momentum: 0, weightDecay: 10, trainSize: 50 };
      const sgd = new Sgd(layout, engine, o);
      const w = buffer(engine, [1, 2, 3, 4, 5]);
      sgd.step(w, buffer(engine, [0, 0, 0, 0, 0]), 1);
      expectClose(w, [0.9, 1.8, 3, 3.6, 5]);
      sgd.step(w, buffer(engine, [2, 2, 2, 2, 2]), 2);
      expectClose(w, [0.81 - 0.5, 1.62 - 0.5, 2.5, 3.24 - 0.5, 4.5]);
    });

    it(`${name}: momentum and weight decay together, over three steps, as the rule computed by hand`, () => {
      const o = { eta: 0.1, momentum: 0.5, weightDecay: 10, trainSize: 100 };
      const sgd = new Sgd(layout, engine, o);
      const w = buffer(engine, [1, -2, 3, 0.5, -1]);
      const g = buffer(engine, [0, 0, 0, 0, 0]);
      const ref = Array.from(w);
      const v = [0, 0, 0, 0, 0];
      for (const [sum, m] of [[[1, 2, 3, 4, 5], 1], [[-2, 0, 4, 1, 1], 2], [[0.5, 0.5, -3, 2, 0], 3]] as const) {
        g.set(sum);
        sgd.step(w, g, m);
        byHand(o, ref, v, [...sum], m);
        expectClose(w, ref);
        expectClose(sgd.velocity!, v);
      }
    });
  }

  it('steps whichever parameter and gradient buffers it is given', () => {
    for (const o of [{ eta: 1, momentum: 0, weightDecay: 0, trainSize: 10 }, { eta: 1, momentum: 0, weightDecay: 5, trainSize: 10 }]) {
      const sgd = new Sgd(layout, k, o);
      const a = Float32Array.from([1, 1, 1, 1, 1]);
      const b = Float32Array.from([2, 2, 2, 2, 2]);
      const ga = Float32Array.from([1, 0, 0, 0, 0]);
      const gb = Float32Array.from([0, 0, 0, 0, 4]);
      sgd.step(a, ga, 1);
      const aAfter = a.slice();
      sgd.step(b, gb, 2);
      expect(a).toEqual(aAfter); // the second step did not touch the first buffer
      const refB = [2, 2, 2, 2, 2];
      byHand(o, refB, [0, 0, 0, 0, 0], [0, 0, 0, 0, 4], 2);
      expectClose(b, refB);
      sgd.step(b, ga, 1); // and an earlier gradient buffer with another parameter buffer
      byHand(o, refB, [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], 1);
      expectClose(b, refB);
      expect(a).toEqual(aAfter);
    }
  });
});

describe('SGD options', () => {
  const good: SgdOptions = { eta: 0.1, momentum: 0.5, weightDecay: 1, trainSize: 10 };
  it('accepts the edges of each range', () => {
    for (const o of [{ momentum: 0 }, { momentum: 0.999 }, { weightDecay: 0 }, { trainSize: 1 }, { eta: 1e-9 }]) {
      expect(() => new Sgd(layout, k, { ...good, ...o })).not.toThrow();
    }
  });

  it('rejects eta, momentum, weight decay or trainSize outside their ranges', () => {
    for (const o of [
      { eta: 0 }, { eta: -1 }, { eta: NaN }, { eta: Infinity },
      { momentum: -0.1 }, { momentum: 1 }, { momentum: NaN }, { momentum: -Infinity },
      { weightDecay: -1 }, { weightDecay: NaN }, { weightDecay: Infinity },
      { trainSize: 0 }, { trainSize: 2.5 }, { trainSize: -10 }, { trainSize: NaN },
    ]) {
      expect(() => new Sgd(layout, k, { ...good, ...o }), JSON.stringify(o)).toThrow(RangeError);
    }
  });
});
