import { describe, expect, it } from 'vitest';
import { initParams } from '../../src/model/init.js';
import { layoutFor } from '../../src/model/spec.js';
import { Network } from '../../src/model/network.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { Rng } from '../../src/tensor/rng.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';

describe('parameter layout', () => {
  it('names tensors like torch.nn.Linear and packs them in one flat buffer', () => {
    const layout = layoutFor(NIELSEN);
    expect(layout.tensors.map((t) => [t.name, t.shape, t.offset])).toEqual([
      ['layers.0.weight', [30, 784], 0],
      ['layers.0.bias', [30], 23_520],
      ['layers.1.weight', [10, 30], 23_550],
      ['layers.1.bias', [10], 23_850],
    ]);
    expect(layout.size).toBe(23_860);
  });

  it('gives views that share memory with the flat buffer', () => {
    const layout = layoutFor(NIELSEN);
    const buf = new Float32Array(layout.size);
    layout.view(buf, 'layers.1.bias')[3] = 42;
    expect(buf[23_853]).toBe(42);
  });

  it('has a layout hash that changes with the shapes', () => {
    expect(layoutFor(NIELSEN).hash()).toBe(layoutFor({ ...NIELSEN }).hash());
    expect(layoutFor(NIELSEN).hash()).not.toBe(layoutFor({ ...NIELSEN, sizes: [784, 31, 10] }).hash());
  });
});

describe('initialisation', () => {
  it('gaussian draws weights and biases from N(0, 1); scaled draws weights from N(0, 1/n_in)', () => {
    const layout = layoutFor({ ...NIELSEN, sizes: [784, 100, 10] });
    for (const [scheme, std] of [['gaussian', 1], ['scaled', 1 / Math.sqrt(784)]] as const) {
      const p = new Float32Array(layout.size);
      initParams(p, layout, scheme, new Rng(2));
      const w = layout.view(p, 'layers.0.weight');
      const mean = w.reduce((a, b) => a + b, 0) / w.length;
      const sd = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
      expect(Math.abs(mean)).toBeLessThan(0.02 * std + 1e-3);
      expect(sd / std).toBeGreaterThan(0.98);
      expect(sd / std).toBeLessThan(1.02);
      const bias = layout.view(p, 'layers.0.bias');
      const bsd = Math.sqrt(bias.reduce((a, b) => a + b * b, 0) / bias.length);
      expect(bsd).toBeGreaterThan(0.7); // biases stay N(0, 1) in both schemes
    }
  });

  it('the same seed gives the same parameters, another seed others', () => {
    const a = seededNetwork(NIELSEN, 1).params;
    const b = seededNetwork(NIELSEN, 1).params;
    const c = seededNetwork(NIELSEN, 2).params;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe('evaluate', () => {
  it('leaves parameters untouched and counts arg-max hits on real test images', () => {
    const { network, params } = seededNetwork(NIELSEN, 4);
    const before = params.slice();
    const ws = network.createWorkspace(100);
    const correct = network.evaluate(params, ws, realMnist().test, 1000);
    expect(params).toEqual(before);
    expect(correct).toBeGreaterThanOrEqual(0);
    expect(correct).toBeLessThanOrEqual(1000);
    // the same call twice gives the same count (nothing is learned while measuring)
    expect(network.evaluate(params, ws, realMnist().test, 1000)).toBe(correct);
  });

  it('agrees with a forward pass done one example at a time', () => {
    const net = new Network(NIELSEN, createJsKernels());
    const params = net.allocParams();
    initParams(params, net.layout, 'gaussian', new Rng(9));
    const set = realMnist().test;
    const batched = net.evaluate(params, net.createWorkspace(64), set, 200);
    const single = net.evaluate(params, net.createWorkspace(1), set, 200);
    expect(batched).toBe(single);
  });
});
