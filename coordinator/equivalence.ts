/**
 * The central correctness check: K steps from the same parameters over the same batches, once
 * single-node (in-process, world 1) and once on a distributed group, must end at the same
 * parameters up to float rounding. Used by the test suite of every WorkerGroup and by
 * `dpt train --verify-equivalence K`.
 */
import { batchIndices, epochPermutation, stepsPerEpoch } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { Network } from '../src/model/network.js';
import { Sgd, type SgdOptions } from '../src/optim/sgd.js';
import { Rng } from '../src/tensor/rng.js';
import { trainStep } from './trainer.js';
import type { WorkerGroup } from './worker-group.js';

export interface StepsPlan {
  network: Network;
  initialParams: Float32Array;
  train: LabelledImages;
  batch: number;
  steps: number;
  orderSeed: number;
  shuffle: boolean;
  sgd: Omit<SgdOptions, 'trainSize'>;
}

/** Runs plan.steps steps on the group from a copy of the initial parameters; returns the final parameters. */
export async function runSteps(group: WorkerGroup, plan: StepsPlan): Promise<Float32Array> {
  const { network, train, batch } = plan;
  const params = network.allocParams();
  params.set(plan.initialParams);
  const sgd = new Sgd(network.layout, network.kernels, { ...plan.sgd, trainSize: train.count });
  const gradSum = network.allocParams();
  const rng = new Rng(plan.orderSeed);
  const perEpoch = stepsPerEpoch(train.count, batch);
  let perm = epochPermutation(train.count, rng, plan.shuffle);
  for (let step = 0; step < plan.steps; step++) {
    const s = step % perEpoch;
    if (s === 0 && step > 0) perm = epochPermutation(train.count, rng, plan.shuffle);
    await trainStep({ network, sgd, group, params }, gradSum, step, batchIndices(perm, s, batch));
  }
  return params;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`cannot compare ${a.length} with ${b.length} parameters`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d; // NaN propagates as the largest difference
  }
  return m;
}
