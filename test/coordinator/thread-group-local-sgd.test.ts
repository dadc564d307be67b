/**
 * Local SGD on the thread group: each rank runs its rounds on its own thread (rank 0 on the
 * coordinator's thread with 2 or more workers) with the round's data in shared memory, and the
 * product's loop ends where the plain reference does. A round the memory was not sized for is
 * refused before anything is published; a thread that dies in a round fails it as in a step.
 */
import { describe, expect, it } from 'vitest';
import { ThreadGroup } from '../../coordinator/thread-group.js';
import type { StepRequest } from '../../coordinator/worker-group.js';
import { slice } from '../../src/data/mnist.js';
import type { LocalRound } from '../../src/optim/local-sgd.js';
import { describeLocalSgdEquivalence, LOCAL_SGD_CASES } from './local-sgd-suite.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';

const longestRound = Math.max(...LOCAL_SGD_CASES.map((c) => c.every));

describeLocalSgdEquivalence('threads', ({ spec, train, world, maxBatch }) =>
  ThreadGroup.start({ spec, kernels: 'js', train, world, maxBatch, maxRoundSteps: longestRound }));

// rank 0 on a pool thread too: its starting velocity comes through shared memory like the others'
describeLocalSgdEquivalence('threads (coordinatorRank: false)', ({ spec, train, world, maxBatch }) =>
  ThreadGroup.start({ spec, kernels: 'js', train, world, maxBatch, maxRoundSteps: longestRound, coordinatorRank: false }), [2]);

describe('threads: local rounds beside plain steps, and rounds the shared memory was not sized for', () => {
  const train = slice(realMnist().train, 0, 301);

  /** A round of `steps` batches of 4 examples at η 0.5, no momentum. */
  function roundRequest(step: number, steps: number): StepRequest & { local: LocalRound } {
    const { params } = seededNetwork(NIELSEN, 3);
    return {
      step, params, indices: Uint32Array.from({ length: 4 * steps }, (_, i) => i),
      local: { batches: Array(steps).fill(4), etas: Array(steps).fill(0.5), momentum: 0, weightDecay: 0, trainSize: train.count, velocities: null },
    };
  }

  it('refuses a round longer than maxRoundSteps, naming both, and still serves rounds that fit', async () => {
    const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 2, maxBatch: 4, maxRoundSteps: 2 });
    try {
      await expect(group.computeStep(roundRequest(0, 3))).rejects.toThrow(
        /a local round of 3 steps exceeds the thread group's maxRoundSteps of 2: start the group with maxRoundSteps of at least the --average-every K/);
      const results = await group.computeStep(roundRequest(0, 2));
      expect(results.map((r) => r.count)).toEqual([4, 4]);
    } finally {
      await group.close();
    }
  });

  it('serves a plain step after a round as a plain step: the same gradient sums as a group that never ran a round', async () => {
    const fresh = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 2, maxBatch: 4, maxRoundSteps: 2 });
    const used = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 2, maxBatch: 4, maxRoundSteps: 2 });
    try {
      const { params } = seededNetwork(NIELSEN, 3);
      const plain: StepRequest = { step: 2, params, indices: Uint32Array.from([10, 11, 12, 13]) };
      const expected = (await fresh.computeStep(plain)).map((r) => Float32Array.from(r.grads));
      await used.computeStep(roundRequest(0, 2));
      const actual = (await used.computeStep(plain)).map((r) => r.grads);
      for (let r = 0; r < 2; r++) expect(actual[r]).toEqual(expected[r]);
    } finally {
      await Promise.all([fresh.close(), used.close()]);
    }
  });

  it('refuses a round with momentum when started for rounds of one step (no velocity slots)', async () => {
    const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 2, maxBatch: 4 });
    try {
      const req = roundRequest(0, 1);
      const velocity = new Float32Array(req.params.length);
      req.local.momentum = 0.9;
      req.local.velocities = [velocity, velocity];
      await expect(group.computeStep(req)).rejects.toThrow(/needs velocity slots, which the thread group keeps only when started with maxRoundSteps above 1/);
    } finally {
      await group.close();
    }
  });

  it('a thread that dies in a round fails it with DPT_ERR_WORKER_EXITED naming the worker and the step', async () => {
    const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 3, maxBatch: 4, maxRoundSteps: 3, exitAt: { rank: 2, step: 3 } });
    await group.computeStep(roundRequest(0, 3));
    const failure = await group.computeStep(roundRequest(3, 3)).catch((e: unknown) => e);
    expect(failure).toMatchObject({ name: 'WorkerError', code: 'DPT_ERR_WORKER_EXITED', rank: 2, step: 3 });
    expect(group.liveThreads).toBe(0);
  });
});
