/**
 * The test every WorkerGroup must pass for local SGD: the product's training loop with
 * --average-every K on the group ends within 1e-5 of a plain reference implementation of local
 * SGD written here (each rank steps its own copy on its shard of every global batch; every K
 * steps, and at the end of each epoch, the copies are averaged weighted by the examples each
 * saw), after 40 steps on real MNIST, for 1, 2 and 3 ranks, with momentum averaged or kept per
 * rank. The subset of 301 examples at batch 12 ends every epoch with a batch of 1, so some ranks
 * sit steps out and a round is cut short at the epoch's end.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { maxAbsDiff } from '../../coordinator/equivalence.js';
import { runTraining } from '../../coordinator/trainer.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import { epochPermutation, shardRange, stepsPerEpoch } from '../../src/data/batches.js';
import type { LabelledImages } from '../../src/data/idx.js';
import { slice } from '../../src/data/mnist.js';
import type { Network } from '../../src/model/network.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { Sgd } from '../../src/optim/sgd.js';
import { Rng } from '../../src/tensor/rng.js';
import { ShardComputer } from '../../worker/compute.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';

export interface LocalSgdCase {
  every: number;
  momentum: number;
  weightDecay: number;
  averageOptimizerState: boolean;
}

export interface ReferencePlan extends LocalSgdCase {
  network: Network;
  initial: Float32Array;
  train: LabelledImages;
  world: number;
  batch: number;
  steps: number;
  eta: number;
  orderSeed: number;
}

/** Local SGD as the literature states it, one rank after another, with no buffer shared with the product. */
export function referenceLocalSgd(p: ReferencePlan): Float32Array {
  const computer = new ShardComputer(p.network.spec, p.network.kernels, p.batch);
  const size = p.initial.length;
  const decays = new Float64Array(size);
  for (const t of p.network.layout.tensors) if (t.decays) decays.fill(p.weightDecay / p.train.count, t.offset, t.offset + t.size);
  const global = Float32Array.from(p.initial);
  let velocities = Array.from({ length: p.world }, () => new Float64Array(size));
  const rng = new Rng(p.orderSeed);
  const perEpoch = stepsPerEpoch(p.train.count, p.batch);
  let done = 0;
  while (done < p.steps) {
    const perm = epochPermutation(p.train.count, rng, true);
    for (let s = 0; s < perEpoch && done < p.steps;) {
      const end = Math.min(perEpoch, (Math.floor(s / p.every) + 1) * p.every, s + p.steps - done);
      const copies: Float32Array[] = [];
      const seen: number[] = [];
      for (let r = 0; r < p.world; r++) {
        const w = Float32Array.from(global);
        const v = velocities[r]!;
        let n = 0;
        for (let step = s; step < end; step++) {
          const batch = perm.subarray(step * p.batch, Math.min(perm.length, (step + 1) * p.batch));
          const [a, e] = shardRange(batch.length, r, p.world);
          if (e === a) continue;
          const g = computer.computeIndexed(w, p.train, batch.subarray(a, e)).grads;
          for (let i = 0; i < size; i++) {
            const grad = g[i]! / (e - a) + decays[i]! * w[i]!;
            if (p.momentum !== 0) {
              v[i] = p.momentum * v[i]! - p.eta * grad;
              w[i] = w[i]! + v[i]!;
            } else {
              w[i] = w[i]! - p.eta * grad;
            }
          }
          n += e - a;
        }
        copies.push(w);
        seen.push(n);
      }
      const total = seen.reduce((x, y) => x + y, 0);
      for (let i = 0; i < size; i++) {
        let sum = 0;
        for (let r = 0; r < p.world; r++) sum += (seen[r]! / total) * copies[r]![i]!;
        global[i] = sum;
      }
      if (p.averageOptimizerState && p.momentum !== 0) {
        const avg = new Float64Array(size);
        for (let r = 0; r < p.world; r++) for (let i = 0; i < size; i++) avg[i] = avg[i]! + (seen[r]! / total) * velocities[r]![i]!;
        velocities = velocities.map(() => Float64Array.from(avg));
      }
      done += end - s;
      s = end;
    }
  }
  return global;
}

/** Runs the product's loop with local SGD on `group` for plan.steps steps; returns the parameters. */
export async function productLocalSgd(group: WorkerGroup, p: ReferencePlan): Promise<Float32Array> {
  const params = p.network.allocParams();
  params.set(p.initial);
  const sgd = new Sgd(p.network.layout, p.network.kernels, { eta: p.eta, momentum: p.momentum, weightDecay: p.weightDecay, trainSize: p.train.count });
  const evalSet = slice(realMnist().test, 0, 50);
  await runTraining({
    network: p.network, sgd, group, params, train: p.train, evalSet, evalWorkspace: p.network.createWorkspace(50),
    orderRng: new Rng(p.orderSeed), epochs: 100, batch: p.batch, shuffle: true, maxSteps: p.steps,
    localSgd: { every: p.every, afterEpochs: 0, averageOptimizerState: p.averageOptimizerState },
  });
  return params;
}

export const LOCAL_SGD_CASES: LocalSgdCase[] = [
  { every: 5, momentum: 0, weightDecay: 0, averageOptimizerState: false },
  { every: 5, momentum: 0.9, weightDecay: 5, averageOptimizerState: false },
  { every: 5, momentum: 0.9, weightDecay: 5, averageOptimizerState: true },
];

export function describeLocalSgdEquivalence(name: string, makeGroup: (a: { spec: NetworkSpec; train: LabelledImages; world: number; maxBatch: number }) => Promise<WorkerGroup>,
  worlds: number[] = [1, 2, 3]): void {
  describe(`${name}: local SGD matches a plain reference implementation`, () => {
    const train = slice(realMnist().train, 0, 301);
    const open: WorkerGroup[] = [];
    afterAll(async () => {
      await Promise.all(open.map((g) => g.close()));
    });
    for (const world of worlds) {
      for (const c of LOCAL_SGD_CASES) {
        const label = `${world} rank${world > 1 ? 's' : ''}, K=${c.every}, momentum ${c.momentum}${c.momentum ? (c.averageOptimizerState ? ' averaged' : ' per rank') : ''}`;
        it(`${label}: within 1e-5 after 40 steps`, async () => {
          const { network, params } = seededNetwork(NIELSEN, 11);
          const plan: ReferencePlan = { ...c, network, initial: params, train, world, batch: 12, steps: 40, eta: 0.5, orderSeed: 5 };
          const expected = referenceLocalSgd(plan);
          const group = await makeGroup({ spec: NIELSEN, train, world, maxBatch: plan.batch });
          open.push(group);
          const actual = await productLocalSgd(group, plan);
          await group.close();
          expect(maxAbsDiff(expected, actual)).toBeLessThanOrEqual(1e-5);
          // the run must have moved the parameters, or the comparison proves nothing
          expect(maxAbsDiff(expected, params)).toBeGreaterThan(1e-2);
        });
      }
    }
  });
}
