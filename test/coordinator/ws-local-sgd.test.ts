/**
 * Local SGD on real WebSocket worker processes: one round message per rank per round, the same
 * trajectory as the plain reference (the suite every group passes), with shipped rows too; a
 * round over --wire bf16; a worker killed mid-round, whose rank's round a survivor redoes to the
 * same final parameters; --step-timeout counted per step of a round; and post-local SGD, plain
 * steps then rounds on the same workers, as in process.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { maxAbsDiff } from '../../coordinator/equivalence.js';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { runTraining } from '../../coordinator/trainer.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import type { WireFormat } from '../../src/config.js';
import { slice } from '../../src/data/mnist.js';
import { Sgd } from '../../src/optim/sgd.js';
import { Rng } from '../../src/tensor/rng.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';
import { describeLocalSgdEquivalence, productLocalSgd, referenceLocalSgd, type ReferencePlan } from './local-sgd-suite.js';
import { roundClient } from './ws-round-client.js';
import { TEST_TOKEN, wsGroupWithWorkers, type WsTestGroup } from './ws-workers.js';

describeLocalSgdEquivalence('ws --data local', (a) => wsGroupWithWorkers({ ...a, data: 'local' }));
// shipped rows, received into a wasm engine's shared memory as `dpt train` does
describeLocalSgdEquivalence('ws --data ship', (a) => wsGroupWithWorkers({ ...a, data: 'ship', coordinatorKernels: createWasmKernels() }), [2]);
describeLocalSgdEquivalence('ws, the coordinator computing rank 0', (a) => wsGroupWithWorkers({ ...a, data: 'local', coordinatorRank: true }), [2, 3]);

const train = slice(realMnist().train, 0, 301);
const open: WorkerGroup[] = [];
afterAll(async () => {
  await Promise.all(open.map((g) => g.close()));
});

/** 2 ranks, K = 5, momentum kept per rank: every round carries parameters, velocity, deltas. */
function plan(steps: number): ReferencePlan {
  const { network, params } = seededNetwork(NIELSEN, 11);
  return {
    every: 5, momentum: 0.9, weightDecay: 5, averageOptimizerState: false,
    network, initial: params, train, world: 2, batch: 12, steps, eta: 0.5, orderSeed: 5,
  };
}

/**
 * The group, with every round's requests counted: rounds, bytes both ways, and hooks before each
 * round's requests are sent and after. Plain steps are an error unless `steps` allows them (they
 * are passed on, not counted).
 */
function counted(group: WsTestGroup, afterSend: (round: number) => void = () => {}, steps = false, beforeSend: (round: number) => void = () => {}) {
  const tally = { rounds: 0, bytes: 0 };
  const g: WorkerGroup = {
    transport: group.transport, world: group.world, close: () => group.close(),
    computeStep: async (req) => {
      if (!req.local) {
        if (steps) return group.computeStep(req);
        throw new Error('a local-SGD run asked for a plain step');
      }
      beforeSend(tally.rounds);
      const pending = group.computeStep(req);
      afterSend(tally.rounds++);
      const results = await pending;
      for (const r of results) tally.bytes += r.bytesSent + r.bytesReceived;
      return results;
    },
  };
  return { g, tally };
}

describe('local SGD over WebSocket', () => {
  it('one round under --wire bf16 ends with finite parameters near fp32, in fewer bytes (velocities stay fp32)', async () => {
    const p = plan(5);
    const byWire: Partial<Record<WireFormat, { params: Float32Array; bytes: number }>> = {};
    for (const wire of ['fp32', 'bf16'] as const) {
      const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: p.batch, data: 'local', wire });
      open.push(group);
      const { g, tally } = counted(group);
      const params = await productLocalSgd(g, p);
      await group.close();
      expect(tally.rounds, wire).toBe(1);
      byWire[wire] = { params, bytes: tally.bytes };
    }
    const fp32 = byWire.fp32!;
    const bf16 = byWire.bf16!;
    const moved = maxAbsDiff(fp32.params, p.initial);
    const diff = maxAbsDiff(fp32.params, bf16.params);
    console.log(`784-30-10, 2 ranks, one round of 5 steps with momentum: ${fp32.bytes} bytes per round in fp32, ${bf16.bytes} in bf16 (${(bf16.bytes / fp32.bytes).toFixed(3)}); bf16 max |Δ| vs fp32 ${diff.toExponential(2)}, the round moved parameters by up to ${moved.toFixed(3)}`);
    expect(bf16.params.every(Number.isFinite)).toBe(true);
    expect(moved).toBeGreaterThan(1e-2);
    expect(diff).toBeLessThan(1e-2);
    // params and deltas halve, velocities (one each way per rank) do not: 6 bytes a parameter where fp32 takes 8
    expect(bf16.bytes / fp32.bytes).toBeGreaterThan(0.74);
    expect(bf16.bytes / fp32.bytes).toBeLessThan(0.76);
  }, 60_000);

  it('a worker killed mid-round: a survivor redoes its rank\'s whole round, every example counted once, the same final parameters as with no fault', async () => {
    const p = plan(20);
    const expected = referenceLocalSgd(p);
    const clean = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: p.batch, data: 'local' });
    open.push(clean);
    const noFault = await productLocalSgd(clean, p);
    await clean.close();

    const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: p.batch, data: 'local' });
    open.push(group);
    const pid = Number(/worker 1 \(127\.0\.0\.1:\d+, \S+ pid (\d+)\) joined/.exec(group.lines.join('\n'))![1]);
    const victim = group.workers.children.find((c) => c.pid === pid)!;
    // rank 1's worker is stopped before round 2 is sent, so it cannot answer it, and killed once
    // the round's frames are on their way: it is lost computing that round, whatever the timing
    const { g, tally } = counted(group, (round) => { if (round === 2) victim.kill('SIGKILL'); }, false, (round) => { if (round === 2) victim.kill('SIGSTOP'); });
    const faulty = await productLocalSgd(g, p);
    await group.close();
    const log = group.lines.join('\n');
    expect(tally.rounds).toBe(4);
    expect(log).toMatch(new RegExp(`step 10: lost worker 1 \\(127\\.0\\.0\\.1:\\d+, \\S+ pid ${pid}\\) computing shard 1`));
    expect(log).toMatch(/step 10: shard 1 \(rank 1's\) re-assigned to worker 0/);
    expect(group.inner.lostWorkers).toBe(1);
    // productLocalSgd's trainer checks every round's counts add up to its examples (exactly once)
    expect(maxAbsDiff(noFault, faulty)).toBe(0);
    expect(maxAbsDiff(expected, faulty)).toBeLessThanOrEqual(1e-5);
  }, 60_000);

  it('gives a round --step-timeout for each of its steps: a 5-step round answered after 1 s meets a 0.4 s step timeout', async () => {
    const p = { ...plan(5), world: 1 };
    const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 1, maxBatch: p.batch, data: 'local', processes: 0, waitFor: 0, stepTimeoutMs: 400 });
    open.push(group);
    const slow = roundClient(group.inner.url, TEST_TOKEN, { spec: NIELSEN, train, maxShard: p.batch, delayMs: 1000 });
    await group.inner.waitForWorkers(10_000);
    const params = await productLocalSgd(group, p);
    await group.close();
    (await slow).close();
    expect(group.inner.lostWorkers).toBe(0);
    expect(maxAbsDiff(referenceLocalSgd(p), params)).toBeLessThanOrEqual(1e-5);
  }, 30_000);

  it('post-local SGD (plain steps for the first epoch, then rounds) ends as the in-process group does: a round after steps, on the same workers', async () => {
    const p = plan(40);
    const run = async (group: WorkerGroup): Promise<Float32Array> => {
      const params = Float32Array.from(p.initial);
      const sgd = new Sgd(p.network.layout, p.network.kernels, { eta: p.eta, momentum: p.momentum, weightDecay: p.weightDecay, trainSize: train.count });
      const evalSet = slice(realMnist().test, 0, 50);
      await runTraining({
        network: p.network, sgd, group, params, train, evalSet, evalWorkspace: p.network.createWorkspace(50),
        orderRng: new Rng(p.orderSeed), epochs: 2, batch: p.batch, shuffle: true, maxSteps: p.steps,
        localSgd: { every: p.every, afterEpochs: 1, averageOptimizerState: false },
      });
      return params;
    };
    const inproc = await run(new InProcessGroup(NIELSEN, p.network.kernels, train, 2, p.batch));
    const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: p.batch, data: 'local' });
    open.push(group);
    const { g, tally } = counted(group, () => {}, true);
    const ws = await run(g);
    await group.close();
    // 26 steps a epoch: 26 plain steps, then rounds from step 26 to 30, 30 to 35 and 35 to 40
    expect(tally.rounds).toBe(3);
    expect(maxAbsDiff(inproc, p.initial)).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(inproc, ws)).toBeLessThanOrEqual(1e-5);
  }, 30_000);
});
