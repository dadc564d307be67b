/**
 * --wire fp16 / bf16 with real worker processes: training stays close to the fp32 run and finite,
 * and the bytes each rank exchanges per step are about half.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { maxAbsDiff, runSteps, type StepsPlan } from '../../coordinator/equivalence.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import type { WireFormat } from '../../src/config.js';
import { slice } from '../../src/data/mnist.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';
import { wsGroupWithWorkers } from './ws-workers.js';

const train = slice(realMnist().train, 0, 1009);
const { network, params } = seededNetwork(NIELSEN, 11);
const plan: StepsPlan = {
  network, initialParams: params, train, batch: 20, steps: 30, orderSeed: 5, shuffle: true,
  sgd: { eta: 3.0, momentum: 0, weightDecay: 0 },
};

/** Runs the plan on 2 ws workers with this wire format; the final parameters and bytes per step. */
async function run(wire: WireFormat): Promise<{ params: Float32Array; bytesPerStep: number }> {
  const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: plan.batch, data: 'local', wire });
  open.push(group);
  let bytes = 0;
  const counting: WorkerGroup = {
    transport: group.transport, world: group.world, close: () => group.close(),
    computeStep: async (req) => {
      const results = await group.computeStep(req);
      for (const r of results) bytes += r.bytesSent + r.bytesReceived;
      return results;
    },
  };
  const final = await runSteps(counting, plan);
  await group.close();
  return { params: final, bytesPerStep: bytes / plan.steps };
}

const open: WorkerGroup[] = [];
afterAll(async () => {
  await Promise.all(open.map((g) => g.close()));
});

describe('--wire on WebSocket workers', () => {
  it('fp16 and bf16 train 784-30-10 close to fp32, finite, with about half the bytes per step', async () => {
    const fp32 = await run('fp32');
    const moved = maxAbsDiff(fp32.params, params);
    expect(moved).toBeGreaterThan(0.1);
    for (const [wire, tolerance] of [['fp16', 2e-3], ['bf16', 1e-2]] as const) {
      const half = await run(wire);
      expect(half.params.every(Number.isFinite), wire).toBe(true);
      const diff = maxAbsDiff(fp32.params, half.params);
      console.log(`${wire}: max |Δ| vs fp32 ${diff.toExponential(2)} (training moved parameters by up to ${moved.toFixed(2)}); bytes/step ${half.bytesPerStep} vs ${fp32.bytesPerStep}`);
      expect(diff, wire).toBeLessThan(tolerance);
      expect(half.bytesPerStep / fp32.bytesPerStep, wire).toBeGreaterThan(0.49);
      expect(half.bytesPerStep / fp32.bytesPerStep, wire).toBeLessThan(0.52);
    }
  }, 60_000);

  // N(0,1) weights give this net gradients whose 1024-example sum exceeds fp16's 65504 (see
  // test/worker/wire-mean.test.ts): only a worker that sends the mean gets through the step
  it('fp16 carries a batch-1024 shard of 784-256-256-10 (the mean, not the overflowing sum): finite parameters', async () => {
    const big: NetworkSpec = { sizes: [784, 256, 256, 10], activation: 'relu', cost: 'cross-entropy' };
    const set = slice(realMnist().train, 0, 1024);
    const net = seededNetwork(big, 3, undefined, 'gaussian');
    const group = await wsGroupWithWorkers({ spec: big, train: set, world: 1, maxBatch: 1024, data: 'local', wire: 'fp16' });
    open.push(group);
    const final = await runSteps(group, { ...plan, network: net.network, initialParams: net.params, train: set, batch: 1024, steps: 1, sgd: { eta: 0.1, momentum: 0, weightDecay: 0 } });
    await group.close();
    expect(final.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(final, net.params)).toBeGreaterThan(1e-3);
  }, 60_000);
});
