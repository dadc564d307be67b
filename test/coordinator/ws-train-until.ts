/**
 * Test helper: trains NIELSEN (seed 11, batch 10, order seed 5, eta 3) on a group for as long as a
 * test keeps attacking it, then gives the plan of the same steps, so the result can be replayed
 * in-process and compared bit for bit. Each step's shards are checked as they come back.
 */
import type { StepsPlan } from '../../coordinator/equivalence.js';
import { trainStep } from '../../coordinator/trainer.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import { batchIndices, epochPermutation, shardRange, stepsPerEpoch } from '../../src/data/batches.js';
import type { LabelledImages } from '../../src/data/idx.js';
import { Sgd } from '../../src/optim/sgd.js';
import { Rng } from '../../src/tensor/rng.js';
import { NIELSEN, seededNetwork } from '../helpers/fixtures.js';

export interface Training {
  /** steps completed so far */
  readonly steps: number;
  /** steps whose shards did not come back as rank 0..W-1, each with its shardRange count */
  readonly badShardSteps: string[];
  /** why training stopped early (a step failed), else null */
  readonly error: Error | null;
  /** resolves once stop() said so, after the step under way; rejects when a step fails */
  readonly done: Promise<{ params: Float32Array; steps: number }>;
}

/**
 * Starts training on the group until stop() returns true (checked before each step). Steps are
 * paced (2 ms apart) so attackers get the event loop between them and the replay stays short.
 */
export function trainUntil(group: WorkerGroup, train: LabelledImages, stop: () => boolean): Training {
  const state = { steps: 0, badShardSteps: [] as string[], error: null as Error | null };
  // exactly once, shard by shard: shard s of the step (whoever computed it) with its own count
  const checked: WorkerGroup = {
    transport: group.transport, world: group.world, close: () => group.close(),
    async computeStep(req) {
      const results = await group.computeStep(req);
      const got = results.map((r) => `${r.rank}:${r.count}`).join(' ');
      const want = Array.from({ length: group.world }, (_, s) => {
        const [a, b] = shardRange(req.indices.length, s, group.world);
        return `${s}:${b - a}`;
      }).join(' ');
      if (got !== want) state.badShardSteps.push(`step ${req.step}: shards ${got}, expected ${want}`);
      return results;
    },
  };
  const done = (async () => {
    const { network, params } = seededNetwork(NIELSEN, 11);
    const sgd = new Sgd(network.layout, network.kernels, { eta: 3, momentum: 0, weightDecay: 0, trainSize: train.count });
    const gradSum = network.allocParams();
    const rng = new Rng(5);
    const perEpoch = stepsPerEpoch(train.count, 10);
    let perm = epochPermutation(train.count, rng, true);
    for (let step = 0; !stop(); step++) {
      await new Promise((r) => setTimeout(r, 2));
      const s = step % perEpoch;
      if (s === 0 && step > 0) perm = epochPermutation(train.count, rng, true);
      await trainStep({ network, sgd, group: checked, params }, gradSum, step, batchIndices(perm, s, 10));
      state.steps = step + 1;
    }
    return { params, steps: state.steps };
  })();
  // kept for the caller, who may be busy attacking when it happens
  done.catch((e: Error) => { state.error = e; });
  return { get steps() { return state.steps; }, get error() { return state.error; }, badShardSteps: state.badShardSteps, done };
}

/** The plan of the first `steps` steps trainUntil ran, for runSteps on a reference group. */
export function replayPlan(train: LabelledImages, steps: number): StepsPlan {
  const { network, params } = seededNetwork(NIELSEN, 11);
  return { network, initialParams: params, train, batch: 10, steps, orderSeed: 5, shuffle: true, sgd: { eta: 3, momentum: 0, weightDecay: 0 } };
}

/** Resolves when cond() holds (polled every 5 ms); fails after ms with `what`. */
export async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
