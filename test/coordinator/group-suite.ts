/**
 * The test suite every WorkerGroup must pass: parameters after K steps on the group equal the
 * single-node parameters (in-process, world 1) within a tolerance, on real MNIST, for several
 * world sizes and global batches — including a batch smaller than the world and epochs whose
 * size is not a multiple of the batch.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { maxAbsDiff, runSteps, type StepsPlan } from '../../coordinator/equivalence.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import { slice } from '../../src/data/mnist.js';
import type { LabelledImages } from '../../src/data/idx.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { NIELSEN, DEEP_RELU, realMnist, seededNetwork } from '../helpers/fixtures.js';

export interface GroupFactoryArgs {
  spec: NetworkSpec;
  train: LabelledImages;
  world: number;
  maxBatch: number;
}

export interface GroupSuiteOptions {
  worlds: number[];
  batches: number[];
  steps: number;
  /** absolute tolerance on every parameter */
  tolerance: number;
  /** examples in the training subset (a prime-ish count so epochs end with a partial batch) */
  trainCount?: number;
}

export function describeGroupEquivalence(name: string, makeGroup: (a: GroupFactoryArgs) => Promise<WorkerGroup>, o: GroupSuiteOptions): void {
  describe(`${name}: N workers compute what single-node computes`, () => {
    const train = slice(realMnist().train, 0, o.trainCount ?? 1009);
    const open: WorkerGroup[] = [];
    afterAll(async () => {
      await Promise.all(open.map((g) => g.close()));
    });

    for (const spec of [NIELSEN, DEEP_RELU]) {
      for (const world of o.worlds) {
        for (const batch of o.batches) {
          it(`${spec.sizes.join('-')} ${spec.activation}: ${world} workers, batch ${batch}, ${o.steps} steps`, async () => {
            // the deep ReLU net gets the scaled init it would be trained with (N(0,1) weights saturate its logits)
            const { network, params } = seededNetwork(spec, 11, undefined, spec.activation === 'relu' ? 'scaled' : 'gaussian');
            const plan: StepsPlan = {
              network, initialParams: params, train, batch, steps: o.steps, orderSeed: 5, shuffle: true,
              sgd: { eta: spec.cost === 'quadratic' ? 3.0 : 0.1, momentum: 0, weightDecay: 0 },
            };
            const single = new InProcessGroup(spec, network.kernels, train, 1, batch);
            const reference = await runSteps(single, plan);
            const group = await makeGroup({ spec, train, world, maxBatch: batch });
            open.push(group);
            expect(group.world).toBe(world);
            const distributed = await runSteps(group, plan);
            await group.close();
            const diff = maxAbsDiff(reference, distributed);
            expect(diff).toBeLessThanOrEqual(o.tolerance);
            // the run must have moved the parameters, or the comparison proves nothing
            expect(maxAbsDiff(reference, params)).toBeGreaterThan(1e-3);
          });
        }
      }
    }
  });
}
