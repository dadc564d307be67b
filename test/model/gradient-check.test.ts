import { describe, expect, it } from 'vitest';
import { Network } from '../../src/model/network.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { initParams } from '../../src/model/init.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { Rng } from '../../src/tensor/rng.js';

// Central differences in float32: eps 1e-2 keeps round-off (~1e-7 / eps) far below the
// truncation error (~eps² · f'''), and a relative tolerance of 1e-2 catches any wrong term.
const EPS = 1e-2;

function check(spec: NetworkSpec) {
  const kernels = createJsKernels();
  const net = new Network(spec, kernels);
  const rng = new Rng(3);
  const params = net.allocParams();
  initParams(params, net.layout, 'scaled', rng);
  const B = 4;
  const ws = net.createWorkspace(B);
  for (let i = 0; i < ws.input.length; i++) ws.input[i] = rng.nextFloat();
  for (let b = 0; b < B; b++) ws.labels[b] = rng.nextInt(spec.sizes.at(-1)!);
  const input = ws.input.slice();
  const before = params.slice();

  const grads = net.allocParams();
  const loss = net.lossAndGradSum(params, grads, ws, B);
  expect(Number.isFinite(loss)).toBe(true);
  expect(params).toEqual(before); // the analytic pass changes no parameter

  const lossAt = (): number => {
    ws.input.set(input);
    const scratch = net.allocParams();
    return net.lossAndGradSum(params, scratch, ws, B);
  };
  // which hidden ReLUs are on, as a string, to spot a unit switching inside [p − ε, p + ε]
  const pattern = (): string => ws.acts.slice(0, -1).map((a) => Array.from(a, (x) => (x > 0 ? 1 : 0)).join('')).join('|');
  lossAt();
  const centrePattern = pattern();
  let worst = 0;
  let kinks = 0;
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    params[i] = p + EPS;
    const up = lossAt();
    const upPattern = pattern();
    params[i] = p - EPS;
    const down = lossAt();
    const downPattern = pattern();
    params[i] = p;
    // A ReLU switching on or off inside [p − ε, p + ε] makes the loss non-differentiable there,
    // so the central difference proves nothing either way: skip such points and count them.
    if (upPattern !== centrePattern || downPattern !== centrePattern) {
      kinks++;
      continue;
    }
    const numeric = (up - down) / (2 * EPS);
    const rel = Math.abs(numeric - grads[i]!) / Math.max(1e-2, Math.abs(numeric) + Math.abs(grads[i]!));
    worst = Math.max(worst, rel);
  }
  expect(params).toEqual(before); // nor does the numeric pass
  expect(kinks).toBeLessThan(params.length / 5);
  return worst;
}

describe('analytic gradients agree with central differences', () => {
  for (const activation of ['sigmoid', 'relu', 'tanh'] as const) {
    for (const cost of ['quadratic', 'cross-entropy'] as const) {
      it(`${activation} hidden layers, ${cost} cost`, () => {
        const worst = check({ sizes: [7, 6, 5, 4], activation, cost });
        expect(worst).toBeLessThan(1e-2);
      });
    }
  }

  it('the loss is a SUM over the batch: twice the batch, twice the loss and gradient', () => {
    const spec: NetworkSpec = { sizes: [5, 4, 3], activation: 'sigmoid', cost: 'quadratic' };
    const net = new Network(spec, createJsKernels());
    const params = net.allocParams();
    initParams(params, net.layout, 'gaussian', new Rng(1));
    const ws = net.createWorkspace(2);
    ws.input.set([0.1, 0.2, 0.3, 0.4, 0.5, 0.1, 0.2, 0.3, 0.4, 0.5]);
    ws.labels.set([2, 2]);
    const g1 = net.allocParams();
    const one = net.lossAndGradSum(params, g1, ws, 1);
    const g2 = net.allocParams();
    const two = net.lossAndGradSum(params, g2, ws, 2);
    expect(two).toBeCloseTo(2 * one, 5);
    for (let i = 0; i < g1.length; i++) expect(g2[i]).toBeCloseTo(2 * g1[i]!, 5);
  });
});
