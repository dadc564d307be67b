/** What a network spec accepts and how it is described. */
import { describe, expect, it } from 'vitest';
import { parseActivation, parseCost } from '../../src/config.js';
import { describeSpec, validateSpec, type NetworkSpec } from '../../src/model/spec.js';

const ok: NetworkSpec = { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' };

describe('validateSpec', () => {
  it('accepts every activation and cost, and a one-unit network', () => {
    for (const activation of ['sigmoid', 'relu', 'tanh'] as const) {
      for (const cost of ['quadratic', 'cross-entropy'] as const) expect(() => validateSpec({ ...ok, activation, cost })).not.toThrow();
    }
    expect(() => validateSpec({ ...ok, sizes: [1, 1] })).not.toThrow();
  });

  it('rejects fewer than two sizes, a size that is not a positive integer, an unknown activation or cost', () => {
    for (const sizes of [[784], [], [784, 0, 10], [784, -3, 10], [784, 2.5, 10], [784, NaN, 10]]) {
      expect(() => validateSpec({ ...ok, sizes })).toThrow(/sizes/);
    }
    expect(() => validateSpec({ ...ok, activation: 'softplus' as never })).toThrow(/softplus/);
    expect(() => validateSpec({ ...ok, cost: 'hinge' as never })).toThrow(/hinge/);
  });

  it('the --activation and --cost flags accept every activation and cost', () => {
    for (const a of ['sigmoid', 'relu', 'tanh']) expect(parseActivation(a)).toBe(a);
    for (const c of ['quadratic', 'cross-entropy']) expect(parseCost(c)).toBe(c);
  });
});

describe('describeSpec', () => {
  it('names the sizes, the hidden activation and the output layer each cost implies', () => {
    const nielsen = describeSpec(ok);
    expect(nielsen).toMatch(/^784-30-10 sigmoid\b/);
    expect(nielsen).toMatch(/sigmoid output \+ quadratic cost/);
    const deep = describeSpec({ sizes: [784, 64, 10], activation: 'relu', cost: 'cross-entropy' });
    expect(deep).toMatch(/^784-64-10 relu\b/);
    expect(deep).toMatch(/softmax output \+ cross-entropy cost/);
  });
});
