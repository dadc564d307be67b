/**
 * The batched forward pass and evaluate() against a plain per-example reference written out with
 * the formulas: a ← σ(W·a + b) layer by layer, in doubles, then arg-max by hand.
 */
import { describe, expect, it } from 'vitest';
import type { LabelledImages } from '../../src/data/idx.js';
import { initParams } from '../../src/model/init.js';
import { argmax, Network } from '../../src/model/network.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { Rng } from '../../src/tensor/rng.js';
import { randomSet } from '../helpers/random-set.js';

const ACTIVATE = {
  sigmoid: (z: number) => 1 / (1 + Math.exp(-z)),
  relu: (z: number) => Math.max(0, z),
  tanh: (z: number) => Math.tanh(z),
  identity: (z: number) => z,
};

/** Output of the last layer for one input row: sigmoid outputs (quadratic) or logits (cross-entropy). */
function referenceForward(net: Network, params: Float32Array, input: ArrayLike<number>): number[] {
  const { sizes, activation, cost } = net.spec;
  let a = Array.from(input);
  for (let l = 0; l + 1 < sizes.length; l++) {
    const W = net.layout.view(params, `layers.${l}.weight`);
    const b = net.layout.view(params, `layers.${l}.bias`);
    const [C, OC] = [sizes[l]!, sizes[l + 1]!];
    const last = l + 2 === sizes.length;
    const f = ACTIVATE[last ? (cost === 'quadratic' ? 'sigmoid' : 'identity') : activation];
    a = Array.from({ length: OC }, (_, o) => f(b[o]! + a.reduce((s, x, c) => s + W[o * C + c]! * x, 0)));
  }
  return a;
}

function seeded(spec: NetworkSpec, seed: number) {
  const net = new Network(spec, createJsKernels());
  const params = net.allocParams();
  initParams(params, net.layout, 'gaussian', new Rng(seed));
  return { net, params };
}

describe('forward pass', () => {
  // hidden layers wider than the input and than each other, so no buffer can be sized by the wrong layer
  for (const spec of [
    { sizes: [3, 8, 5, 2], activation: 'relu', cost: 'cross-entropy' },
    { sizes: [3, 8, 9, 4], activation: 'tanh', cost: 'quadratic' },
    { sizes: [4, 2, 6], activation: 'sigmoid', cost: 'quadratic' },
  ] as NetworkSpec[]) {
    it(`${spec.sizes.join('-')} ${spec.activation} ${spec.cost}: every row as the per-example reference`, () => {
      const { net, params } = seeded(spec, 5);
      const B = 6;
      const ws = net.createWorkspace(B);
      const rng = new Rng(8);
      for (let i = 0; i < ws.input.length; i++) ws.input[i] = rng.nextFloat();
      const out = net.forward(params, ws, B);
      const classes = spec.sizes.at(-1)!;
      for (let b = 0; b < B; b++) {
        const ref = referenceForward(net, params, ws.input.subarray(b * spec.sizes[0]!, (b + 1) * spec.sizes[0]!));
        for (let k = 0; k < classes; k++) expect(Math.abs(out[b * classes + k]! - ref[k]!)).toBeLessThan(1e-5);
      }
    });
  }

  it('refuses a batch that is empty or larger than the workspace', () => {
    const { net, params } = seeded({ sizes: [3, 4, 2], activation: 'sigmoid', cost: 'quadratic' }, 1);
    const ws = net.createWorkspace(4);
    expect(() => net.forward(params, ws, 0)).toThrow(RangeError);
    expect(() => net.forward(params, ws, 5)).toThrow(RangeError);
    expect(() => net.lossAndGradSum(params, net.allocParams(), ws, 5)).toThrow(RangeError);
    expect(net.forward(params, ws, 4)).toHaveLength(4 * 2);
  });
});

describe('argmax', () => {
  it('is the index of the largest of n values from offset, the first one on a tie', () => {
    expect(argmax(Float32Array.from([0.1, 0.7, 0.7, 0.2]), 0, 4)).toBe(1);
    expect(argmax(Float32Array.from([-3, -1, -2]), 0, 3)).toBe(1);
    expect(argmax(Float32Array.from([0.5, 0.25, 0.125]), 0, 3)).toBe(0);
    expect(argmax(Float32Array.from([1, 2, 3, 4]), 0, 4)).toBe(3);
    // only the n values from offset count: neither the 9s before nor the 8 after
    expect(argmax(Float32Array.from([9, 9, 9, 1, 5, 2, 8]), 3, 3)).toBe(1);
    expect(argmax(Float32Array.from([9, 4]), 1, 1)).toBe(0);
  });
});

describe('evaluate', () => {
  const spec: NetworkSpec = { sizes: [3, 8, 4], activation: 'relu', cost: 'cross-entropy' };
  const { net, params } = seeded(spec, 6);
  const predicted = (set: LabelledImages, i: number): number => {
    const ref = referenceForward(net, params, Array.from(set.images.subarray(i * 3, i * 3 + 3), (x) => x / 255));
    return ref.indexOf(Math.max(...ref));
  };
  // 13 examples: the first 11 alternately right and wrong, the last 2 right
  const set = randomSet(13, 4, 1, 3, 4);
  for (let i = 0; i < set.count; i++) set.labels[i] = (predicted(set, i) + (i < 11 && i % 2 === 1 ? 1 : 0)) % 4;

  it('counts the examples whose arg-max output is the label, over batches of the workspace size', () => {
    // the predictions are not all the same class, or a constant answer could pass
    expect(new Set(Array.from({ length: set.count }, (_, i) => predicted(set, i))).size).toBeGreaterThan(1);
    for (const maxBatch of [1, 4, 5, 16]) {
      const ws = net.createWorkspace(maxBatch);
      expect(net.evaluate(params, ws, set, 11)).toBe(6); // 0, 2, 4, 6, 8, 10
      expect(net.evaluate(params, ws, set, 7)).toBe(4);
      expect(net.evaluate(params, ws, set)).toBe(8);
    }
  });
});
