import { describe, expect, it } from 'vitest';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { roundLength } from '../../coordinator/local-averaging.js';
import { maxAbsDiff, runSteps } from '../../coordinator/equivalence.js';
import { slice } from '../../src/data/mnist.js';
import { describeLocalSgdEquivalence, productLocalSgd, referenceLocalSgd, type ReferencePlan } from './local-sgd-suite.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';
import { runTraining } from '../../coordinator/trainer.js';
import { Sgd } from '../../src/optim/sgd.js';
import { Rng } from '../../src/tensor/rng.js';

describeLocalSgdEquivalence('in-process', async ({ spec, train, world, maxBatch }) => {
  const { network } = seededNetwork(spec);
  return new InProcessGroup(spec, network.kernels, train, world, maxBatch);
});

describe('local SGD rounds', () => {
  it('end at the next multiple of K, the end of the epoch or the step limit, whichever comes first', () => {
    expect(roundLength(0, 26, 5, Infinity)).toBe(5);
    expect(roundLength(5, 26, 5, Infinity)).toBe(5);
    expect(roundLength(7, 26, 5, Infinity)).toBe(3);
    expect(roundLength(25, 26, 5, Infinity)).toBe(1);
    expect(roundLength(20, 26, 16, Infinity)).toBe(6);
    expect(roundLength(0, 26, 5, 2)).toBe(2);
  });

  /** The same 40 steps of plain SGD at batch 12 on `world` ranks, averaging every step and every 8. */
  async function perStepAndLocal(world: number) {
    const train = slice(realMnist().train, 0, 301);
    const { network, params } = seededNetwork(NIELSEN, 3);
    const plan: ReferencePlan = {
      every: 8, momentum: 0, weightDecay: 0, averageOptimizerState: false,
      network, initial: params, train, world, batch: 12, steps: 40, eta: 3, orderSeed: 9,
    };
    const perStep = await runSteps(new InProcessGroup(NIELSEN, network.kernels, train, world, 12), {
      network, initialParams: params, train, batch: 12, steps: 40, orderSeed: 9, shuffle: true, sgd: { eta: 3, momentum: 0, weightDecay: 0 },
    });
    const local = await productLocalSgd(new InProcessGroup(NIELSEN, network.kernels, train, world, 12), plan);
    return { plan, perStep, local };
  }

  it('with one rank and plain SGD, follow the single-node trajectory', async () => {
    const { plan, perStep, local } = await perStepAndLocal(1);
    expect(maxAbsDiff(perStep, local)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(referenceLocalSgd(plan), local)).toBeLessThanOrEqual(1e-5);
  });

  it('--local-sgd-after 1: the first epoch averages every step, the rounds start with the second', async () => {
    const train = slice(realMnist().train, 0, 301);
    const evalSet = slice(realMnist().test, 0, 50);
    const train2 = async (epochs: number, localSgd: { every: number; afterEpochs: number; averageOptimizerState: boolean } | undefined) => {
      const { network, params } = seededNetwork(NIELSEN, 3);
      const sgd = new Sgd(network.layout, network.kernels, { eta: 3, momentum: 0, weightDecay: 0, trainSize: train.count });
      await runTraining({
        network, sgd, group: new InProcessGroup(NIELSEN, network.kernels, train, 2, 12), params, train, evalSet, evalWorkspace: network.createWorkspace(50),
        orderRng: new Rng(9), epochs, batch: 12, shuffle: true, maxSteps: null, ...(localSgd ? { localSgd } : {}),
      });
      return params;
    };
    const after1 = { every: 8, afterEpochs: 1, averageOptimizerState: false };
    expect(maxAbsDiff(await train2(1, after1), await train2(1, undefined))).toBe(0);
    expect(maxAbsDiff(await train2(2, after1), await train2(2, undefined))).toBeGreaterThan(1e-3);
  });

  it('with two ranks and K > 1, differ from per-step averaging (the ranks really step apart)', async () => {
    const { perStep, local } = await perStepAndLocal(2);
    expect(maxAbsDiff(perStep, local)).toBeGreaterThan(1e-3);
  });
});
