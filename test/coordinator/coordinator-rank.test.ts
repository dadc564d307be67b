/**
 * WebSocket workers with the coordinator computing rank 0 (CoordinatorRankGroup), with real worker
 * processes on 127.0.0.1: the batch is cut into N shards for N ranks, the workers' requests are
 * written to their sockets before the coordinator computes, rank 0 is computed on the parameters the workers get,
 * and lost workers' shards end up computed exactly once — by a surviving worker, or by the
 * coordinator when none is left — to the in-process result, bit for bit.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { maxAbsDiff, runSteps } from '../../coordinator/equivalence.js';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { trainStep } from '../../coordinator/trainer.js';
import { WorkerConnection } from '../../coordinator/ws-connection.js';
import { batchIndices, epochPermutation, shardRange, stepsPerEpoch } from '../../src/data/batches.js';
import { slice } from '../../src/data/mnist.js';
import { Sgd } from '../../src/optim/sgd.js';
import { decodeHalf, ErrorFeedbackEncoder, HALF_DTYPE } from '../../src/protocol/wire-format.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { Rng } from '../../src/tensor/rng.js';
import { ShardComputer } from '../../worker/compute.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';
import { replayPlan, until } from './ws-train-until.js';
import { wsGroupWithWorkers, type WsTestGroup } from './ws-workers.js';

const train = slice(realMnist().train, 0, 1009);
const open: WsTestGroup[] = [];
afterAll(async () => {
  await Promise.all(open.map((g) => g.close()));
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function group(a: { world: number; minWorkers?: number; wire?: 'fp32' | 'fp16' }): Promise<WsTestGroup> {
  const g = await wsGroupWithWorkers({ spec: NIELSEN, train, world: a.world, maxBatch: 10, data: 'local', coordinatorRank: true, minWorkers: a.minWorkers, wire: a.wire });
  open.push(g);
  return g;
}

describe('ws with the coordinator computing rank 0', () => {
  it('starts world - 1 worker processes, hands them their requests before it computes rank 0, and returns N ranks in rank order, each equal to in-process', async () => {
    const g = await group({ world: 3 });
    expect(g.workers.children).toHaveLength(2);
    expect(g.inner.joined).toBe(2);
    const { network, params } = seededNetwork(NIELSEN, 11);
    const indices = Uint32Array.from({ length: 10 }, (_, i) => 3 * i + 1);
    const send = WorkerConnection.prototype.send;
    let written = 0;
    const sends = vi.spyOn(WorkerConnection.prototype, 'send').mockImplementation(function (this: WorkerConnection, frame: Uint8Array, done?: () => void) {
      return send.call(this, frame, done && (() => { written++; done(); }));
    });
    const compute = ShardComputer.prototype.computeIndexed;
    const writtenAtCompute: number[] = [];
    const computes = vi.spyOn(ShardComputer.prototype, 'computeIndexed').mockImplementation(function (this: ShardComputer, ...a: Parameters<ShardComputer['computeIndexed']>) {
      writtenAtCompute.push(written);
      return compute.apply(this, a);
    });
    const results = await g.computeStep({ step: 0, params, indices });
    // both workers' step frames went out, and were in the kernel's hands, before rank 0's compute started
    expect(sends.mock.invocationCallOrder).toHaveLength(2);
    expect(computes.mock.invocationCallOrder).toHaveLength(1);
    expect(Math.max(...sends.mock.invocationCallOrder)).toBeLessThan(computes.mock.invocationCallOrder[0]!);
    expect(writtenAtCompute).toEqual([2]);

    const inproc = await new InProcessGroup(NIELSEN, network.kernels, train, 3, 10).computeStep({ step: 0, params, indices });
    expect(results.map((r) => [r.rank, r.count])).toEqual([0, 1, 2].map((r) => [r, shardRange(10, r, 3)[1] - shardRange(10, r, 3)[0]]));
    for (const r of [0, 1, 2]) {
      expect(maxAbsDiff(results[r]!.grads, inproc[r]!.grads), `rank ${r}`).toBe(0);
      expect(results[r]!.loss).toBe(inproc[r]!.loss);
    }
    // rank 0 crosses no wire; the workers' ranks do
    expect([results[0]!.bytesSent, results[0]!.bytesReceived]).toEqual([0, 0]);
    for (const r of [1, 2]) expect(results[r]!.bytesSent).toBeGreaterThan(0);
  });

  it('computes rank 0 on the parameters the workers decode from a 16-bit wire, not on the coordinator\'s fp32 ones', async () => {
    const g = await group({ world: 2, wire: 'fp16' });
    const { params } = seededNetwork(NIELSEN, 11);
    const indices = Uint32Array.from({ length: 10 }, (_, i) => i);
    const results = await g.computeStep({ step: 0, params, indices });
    const rounded = new Float32Array(params.length);
    decodeHalf(rounded, new ErrorFeedbackEncoder('fp16', params.length).encode('params', params), HALF_DTYPE.fp16);
    const [start, end] = shardRange(10, 0, 2);
    const computer = new ShardComputer(NIELSEN, createJsKernels(), 5);
    const onRounded = Float32Array.from(computer.computeIndexed(rounded, train, indices.subarray(start, end)).grads);
    const onExact = Float32Array.from(computer.computeIndexed(params, train, indices.subarray(start, end)).grads);
    expect(maxAbsDiff(onRounded, onExact)).toBeGreaterThan(0);
    expect(maxAbsDiff(results[0]!.grads, onRounded)).toBe(0);
  });

  it('gives a lost worker\'s shard to the surviving worker, then computes the shards itself when none is left (--min-workers 1); the parameters equal in-process x3 bit for bit', async () => {
    const g = await group({ world: 3, minWorkers: 1 });
    const steps = 30;
    const { network, params } = seededNetwork(NIELSEN, 11);
    const sgd = new Sgd(network.layout, network.kernels, { eta: 3, momentum: 0, weightDecay: 0, trainSize: train.count });
    const gradSum = network.allocParams();
    const rng = new Rng(5);
    const perEpoch = stepsPerEpoch(train.count, 10);
    let perm = epochPermutation(train.count, rng, true);
    for (let step = 0; step < steps; step++) {
      // one worker killed at step 10, the other at step 20
      if (step === 10 || step === 20) {
        const victim = g.workers.children[step === 10 ? 0 : 1]!;
        victim.kill('SIGKILL');
        await until(`the loss of worker pid ${victim.pid}`, () => g.inner.joined === (step === 10 ? 1 : 0));
      }
      const s = step % perEpoch;
      if (s === 0 && step > 0) perm = epochPermutation(train.count, rng, true);
      await trainStep({ network, sgd, group: g, params }, gradSum, step, batchIndices(perm, s, 10));
    }
    const log = g.lines.join('\n');
    expect(log).toMatch(/step 10: shard \d \(rank \d's\) re-assigned to worker \d/);
    expect(log).toMatch(/step 20: no worker is left: shard 1 \(rank 1's\), shard 2 \(rank 2's\) computed on the coordinator until a worker takes them/);
    // a shard per step from step 10, two per step from step 20
    expect(g.inner.reassignedShards).toBe(10 + 2 * 10);
    const reference = await runSteps(new InProcessGroup(NIELSEN, network.kernels, train, 3, 10), replayPlan(train, steps));
    expect(maxAbsDiff(params, reference)).toBe(0);
    expect(maxAbsDiff(params, replayPlan(train, 0).initialParams)).toBeGreaterThan(1e-3);
  });

  it('fails the step when fewer ranks than --min-workers remain, counting the coordinator\'s rank 0', async () => {
    const g = await group({ world: 2, minWorkers: 2 });
    const { params } = seededNetwork(NIELSEN, 11);
    const indices = Uint32Array.from({ length: 10 }, (_, i) => i);
    await g.computeStep({ step: 0, params, indices });
    g.workers.children[0]!.kill('SIGKILL');
    await until('the loss of the worker', () => g.inner.joined === 0);
    await expect(g.computeStep({ step: 1, params, indices }))
      .rejects.toThrow(/DPT_ERR_WORKER_LOST: worker 1 failed at step 1: rank 1: .*; 1 of 2 ranks remain \(rank 0 on the coordinator and 0 workers\) and --min-workers is 2/);
  });
});
