/**
 * The step loop against a plain reference loop: the seeded epoch permutation cut into batches in
 * order, one forward/backward and one optimizer step per batch, an evaluation after each epoch.
 * World size 1 in-process must reproduce it bit for bit (it is the single-node trainer), and a
 * run stopped at any step boundary and resumed must end where the uninterrupted run ends.
 */
import { describe, expect, it } from 'vitest';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { reduceInRankOrder, runTraining, trainStep, type EpochReport, type TrainingPosition, type TrainingRun } from '../../coordinator/trainer.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import { epochPermutation, gatherBatch } from '../../src/data/batches.js';
import { initParams } from '../../src/model/init.js';
import { Network } from '../../src/model/network.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import type { LrSchedule } from '../../src/optim/lr-schedule.js';
import { Sgd } from '../../src/optim/sgd.js';
import { Profiler } from '../../src/profile/profiler.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { Rng } from '../../src/tensor/rng.js';
import { randomSet } from '../helpers/random-set.js';

const SPEC: NetworkSpec = { sizes: [6, 5, 3], activation: 'sigmoid', cost: 'cross-entropy' };
// 23 examples in batches of 5: five steps an epoch, the last one of 3 examples
const TRAIN = randomSet(23, 1);
const EVAL = randomSet(40, 2);
const STEPS_PER_EPOCH = 5;

interface Plan {
  epochs: number;
  batch: number;
  eta: number;
  momentum: number;
  weightDecay: number;
  orderSeed: number;
  shuffle: boolean;
  maxSteps: number | null;
  world: number;
  lrSchedule?: LrSchedule;
}

const PLAN: Plan = { epochs: 3, batch: 5, eta: 0.5, momentum: 0.6, weightDecay: 2, orderSeed: 9, shuffle: true, maxSteps: null, world: 1 };

function initialParams(network: Network): Float32Array {
  const params = network.allocParams();
  initParams(params, network.layout, 'gaussian', new Rng(4));
  return params;
}

function sgdFor(network: Network, p: Plan): Sgd {
  return new Sgd(network.layout, network.kernels, { eta: p.eta, momentum: p.momentum, weightDecay: p.weightDecay, trainSize: TRAIN.count });
}

function trainingRun(p: Plan, group?: WorkerGroup): TrainingRun {
  const network = new Network(SPEC, createJsKernels());
  return {
    network, sgd: sgdFor(network, p), params: initialParams(network),
    group: group ?? new InProcessGroup(SPEC, network.kernels, TRAIN, p.world, p.batch),
    train: TRAIN, evalSet: EVAL, evalWorkspace: network.createWorkspace(16), orderRng: new Rng(p.orderSeed),
    epochs: p.epochs, batch: p.batch, shuffle: p.shuffle, maxSteps: p.maxSteps, lrSchedule: p.lrSchedule ?? null,
  };
}

/**
 * The schedule's rate written out for the reference loop: eta x batch/reference (or its square
 * root), reached from eta in equal steps over the warmup's whole steps.
 */
function handRate(s: LrSchedule, globalStep: number): number {
  const target = s.scale === 'linear' ? s.eta * (s.batch / s.referenceBatch) : s.scale === 'sqrt' ? s.eta * Math.sqrt(s.batch / s.referenceBatch) : s.eta;
  const warmup = Math.round(s.warmupEpochs * STEPS_PER_EPOCH);
  return globalStep < warmup ? s.eta + (target - s.eta) * (globalStep / warmup) : target;
}

/** The reference: the plain loop written out, on one network, without a worker group. */
function referenceTraining(p: Plan) {
  const network = new Network(SPEC, createJsKernels());
  const params = initialParams(network);
  const sgd = sgdFor(network, p);
  const ws = network.createWorkspace(p.batch);
  const grads = network.allocParams();
  const rng = new Rng(p.orderSeed);
  const epochs: Pick<EpochReport, 'epoch' | 'steps' | 'examples' | 'loss' | 'testCorrect' | 'testTotal'>[] = [];
  const stepLosses: number[] = [];
  const limit = () => p.maxSteps !== null && stepLosses.length >= p.maxSteps;
  for (let epoch = 1; epoch <= p.epochs && !limit(); epoch++) {
    const perm = epochPermutation(TRAIN.count, rng, p.shuffle);
    let lossSum = 0;
    let examples = 0;
    let steps = 0;
    for (let start = 0; start < TRAIN.count && !limit(); start += p.batch) {
      const indices = perm.subarray(start, Math.min(TRAIN.count, start + p.batch));
      gatherBatch(ws.input, ws.labels, TRAIN, indices);
      grads.fill(0);
      const loss = network.lossAndGradSum(params, grads, ws, indices.length);
      if (p.lrSchedule) sgd.setEta(handRate(p.lrSchedule, stepLosses.length));
      sgd.step(params, grads, indices.length);
      lossSum += loss;
      examples += indices.length;
      steps++;
      stepLosses.push(loss);
    }
    const testCorrect = network.evaluate(params, network.createWorkspace(16), EVAL);
    epochs.push({ epoch, steps, examples, loss: lossSum / examples, testCorrect, testTotal: EVAL.count });
  }
  return { params, epochs, steps: stepLosses.length, stepLosses };
}

/** The parts of a report that do not depend on the clock. */
const mathOf = (r: EpochReport) => ({ epoch: r.epoch, steps: r.steps, examples: r.examples, loss: r.loss, testCorrect: r.testCorrect, testTotal: r.testTotal });

describe('the step loop reproduces the plain training loop', () => {
  it('one in-process worker, momentum and weight decay on: the same parameters bit for bit and the same epoch reports', async () => {
    const run = trainingRun(PLAN);
    const result = await runTraining(run);
    const ref = referenceTraining(PLAN);
    expect(ref.steps).toBe(3 * STEPS_PER_EPOCH);
    expect(result.steps).toBe(ref.steps);
    expect(result.epochs.map(mathOf)).toEqual(ref.epochs);
    expect(Array.from(run.params)).toEqual(Array.from(ref.params));
    expect(result.interrupted).toBeNull();
    // the run learned something, or the comparison proves little
    expect(ref.epochs[2]!.loss).toBeLessThan(ref.epochs[0]!.loss);
  });

  it('in order, without shuffling: the same as the reference', async () => {
    const plan = { ...PLAN, shuffle: false };
    const run = trainingRun(plan);
    const result = await runTraining(run);
    const ref = referenceTraining(plan);
    expect(result.epochs.map(mathOf)).toEqual(ref.epochs);
    expect(Array.from(run.params)).toEqual(Array.from(ref.params));
  });

  it('plain SGD over three in-process workers ends within float rounding of the plain loop', async () => {
    const plan = { ...PLAN, momentum: 0, weightDecay: 0, world: 3 };
    const run = trainingRun(plan);
    const result = await runTraining(run);
    const ref = referenceTraining(plan);
    for (let i = 0; i < ref.params.length; i++) expect(Math.abs(run.params[i]! - ref.params[i]!)).toBeLessThan(1e-5);
    result.epochs.forEach((r, e) => {
      expect(r.examples).toBe(ref.epochs[e]!.examples);
      expect(Math.abs(r.loss - ref.epochs[e]!.loss)).toBeLessThan(1e-5);
    });
  });

  it('stops after maxSteps even within an epoch, and still evaluates and reports the partial epoch', async () => {
    for (const maxSteps of [7, STEPS_PER_EPOCH]) {
      const plan = { ...PLAN, maxSteps };
      const run = trainingRun(plan);
      const result = await runTraining(run);
      const ref = referenceTraining(plan);
      expect(result.steps).toBe(maxSteps);
      expect(result.epochs.map(mathOf)).toEqual(ref.epochs);
      expect(result.epochs.at(-1)!.steps).toBe(maxSteps === 7 ? 2 : STEPS_PER_EPOCH);
      expect(Array.from(run.params)).toEqual(Array.from(ref.params));
    }
  });

  it('zero epochs train nothing and have no best epoch', async () => {
    const run = trainingRun({ ...PLAN, epochs: 0 });
    const before = run.params.slice();
    const result = await runTraining(run);
    expect(result).toMatchObject({ epochs: [], steps: 0, best: null, interrupted: null });
    expect(run.params).toEqual(before);
  });

  it('the best epoch is the one with the most correct test answers, the earliest on a tie', async () => {
    // evaluated on its own training examples, the net gets more right as it learns
    const learning = trainingRun({ ...PLAN, epochs: 10, weightDecay: 0 });
    learning.evalSet = TRAIN;
    const result = await runTraining(learning);
    const most = Math.max(...result.epochs.map((r) => r.testCorrect));
    expect(most).toBeGreaterThan(result.epochs[0]!.testCorrect);
    expect(result.best).toBe(result.epochs.find((r) => r.testCorrect === most));
    expect(result.epochs.filter((r) => r.testCorrect === most).length).toBeGreaterThan(1); // a tie among the best
    // a step too small to change any answer: every epoch ties, and the first one wins
    const still = await runTraining(trainingRun({ ...PLAN, eta: 1e-9, momentum: 0 }));
    expect(new Set(still.epochs.map((r) => r.testCorrect)).size).toBe(1);
    expect(still.best).toBe(still.epochs[0]);
  });
});

describe('a learning-rate schedule', () => {
  // 1.4 epochs of 5 steps: 7 warmup steps, across the first epoch boundary, from 0.5 to 0.5 x 5/2
  const WARMUP: LrSchedule = { eta: PLAN.eta, scale: 'linear', referenceBatch: 2, batch: PLAN.batch, warmupEpochs: 1.4 };

  for (const lrSchedule of [WARMUP, { ...WARMUP, scale: 'sqrt' as const }, { ...WARMUP, warmupEpochs: 0 }]) {
    it(`${lrSchedule.scale} scaling, warmup ${lrSchedule.warmupEpochs} epochs: the plain loop with the rate set by hand each step, bit for bit`, async () => {
      const plan = { ...PLAN, lrSchedule };
      const run = trainingRun(plan);
      const result = await runTraining(run);
      const ref = referenceTraining(plan);
      expect(result.epochs.map(mathOf)).toEqual(ref.epochs);
      expect(Array.from(run.params)).toEqual(Array.from(ref.params));
      // the schedule changed the result, or the comparison proves little
      expect(Array.from(run.params)).not.toEqual(Array.from(referenceTraining(PLAN).params));
    });
  }

  it('none without warmup gives the same parameters as no schedule, bit for bit', async () => {
    const run = trainingRun({ ...PLAN, lrSchedule: { ...WARMUP, scale: 'none', warmupEpochs: 0 } });
    await runTraining(run);
    expect(Array.from(run.params)).toEqual(Array.from(referenceTraining(PLAN).params));
  });

  it('a run resumed mid-warmup in a fresh optimizer (built with the unscaled eta) ends bit-identical to the uninterrupted run', async () => {
    const plan = { ...PLAN, lrSchedule: WARMUP };
    const ref = referenceTraining(plan);
    const saved = new Map<number, { position: TrainingPosition; params: Float32Array; velocity: Float32Array }>();
    const first = trainingRun(plan);
    first.events = {
      afterStep: (position) => saved.set(position.globalStep, { position, params: first.params.slice(), velocity: first.sgd.velocity!.slice() }),
    };
    await runTraining(first);
    for (const at of [3, STEPS_PER_EPOCH, 6]) {
      const s = saved.get(at)!;
      const run = trainingRun(plan);
      run.params.set(s.params);
      run.sgd.velocity!.set(s.velocity);
      run.resumeFrom = s.position;
      const resumed = await runTraining(run);
      expect(resumed.epochs.map(mathOf)).toEqual(ref.epochs);
      expect(Array.from(run.params)).toEqual(Array.from(ref.params));
    }
  });
});

describe('events', () => {
  it('onStep counts steps within the epoch, onEpoch gets every report, afterStep where training stands', async () => {
    const run = trainingRun(PLAN);
    const onStep: [number, number, number][] = [];
    const onEpoch: EpochReport[] = [];
    const positions: TrainingPosition[] = [];
    run.events = {
      onStep: (s, steps, epoch) => onStep.push([s, steps, epoch]),
      onEpoch: (r) => onEpoch.push(r),
      afterStep: (p) => positions.push(p),
    };
    const result = await runTraining(run);
    const ref = referenceTraining(PLAN);
    const expectedSteps = [1, 2, 3].flatMap((epoch) => [1, 2, 3, 4, 5].map((s) => [s, STEPS_PER_EPOCH, epoch]));
    expect(onStep).toEqual(expectedSteps);
    expect(onEpoch).toEqual(result.epochs);
    expect(positions.map((p) => [p.epoch, p.stepInEpoch, p.globalStep])).toEqual(expectedSteps.map(([s, , e], i) => [e, s, i + 1]));
    positions.forEach((p, i) => {
      const inEpoch = ref.stepLosses.slice(i - (i % STEPS_PER_EPOCH), i + 1);
      expect(p.epochLoss).toBe(inEpoch.reduce((a, b) => a + b, 0));
      expect(p.epochExamples).toBe(Math.min(p.stepInEpoch * 5, TRAIN.count));
      expect(p.reports.map(mathOf)).toEqual(ref.epochs.slice(0, p.epoch - 1));
    });
  });
});

describe('stopping and resuming', () => {
  /** A run that calls stopRequested true once `after` steps are done. */
  async function stoppedAfter(after: number, plan = PLAN) {
    const run = trainingRun(plan);
    let done = 0;
    run.events = { onStep: () => done++ };
    run.stopRequested = () => done >= after;
    return { run, result: await runTraining(run) };
  }

  it('a stop within an epoch ends at the step boundary and says where training stands', async () => {
    const { result } = await stoppedAfter(3);
    const ref = referenceTraining(PLAN);
    expect(result.steps).toBe(3);
    expect(result.epochs).toEqual([]); // a partial epoch is not evaluated
    expect(result.interrupted).toMatchObject({
      epoch: 1, stepInEpoch: 3, globalStep: 3, epochExamples: 15, reports: [],
      epochLoss: ref.stepLosses.slice(0, 3).reduce((a, b) => a + b, 0),
      orderRngAtEpochStart: new Rng(PLAN.orderSeed).getState(),
    });
  });

  it('a stop on the last step of an epoch first evaluates that epoch, then stops before the next', async () => {
    const { result } = await stoppedAfter(STEPS_PER_EPOCH);
    const ref = referenceTraining(PLAN);
    expect(result.epochs.map(mathOf)).toEqual(ref.epochs.slice(0, 1));
    const rngAfterEpoch1 = new Rng(PLAN.orderSeed);
    epochPermutation(TRAIN.count, rngAfterEpoch1, true);
    expect(result.interrupted).toEqual({
      epoch: 2, stepInEpoch: 0, globalStep: STEPS_PER_EPOCH, epochLoss: 0, epochExamples: 0, epochSeconds: 0,
      orderRngAtEpochStart: rngAfterEpoch1.getState(), reports: result.epochs,
    });
  });

  it('a stop when training is complete anyway (last step, or maxSteps reached) is no interruption', async () => {
    expect((await stoppedAfter(3 * STEPS_PER_EPOCH)).result.interrupted).toBeNull();
    const capped = await stoppedAfter(STEPS_PER_EPOCH, { ...PLAN, maxSteps: STEPS_PER_EPOCH });
    expect(capped.result.interrupted).toBeNull();
    expect(capped.result.epochs).toHaveLength(1);
  });

  it('resuming a stopped run from its position ends bit-identical to the uninterrupted run', async () => {
    const ref = referenceTraining(PLAN);
    for (const after of [3, STEPS_PER_EPOCH, 8]) {
      const { run, result } = await stoppedAfter(after);
      run.stopRequested = () => false;
      run.resumeFrom = result.interrupted!;
      run.orderRng = new Rng(12345); // the position, not the rng object, carries the data order
      const resumed = await runTraining(run);
      expect(resumed.steps).toBe(ref.steps);
      expect(resumed.epochs.map(mathOf)).toEqual(ref.epochs);
      expect(Array.from(run.params)).toEqual(Array.from(ref.params));
    }
  });

  it('a fresh process resumed from any afterStep position (parameters and velocity saved there) ends bit-identical', async () => {
    const ref = referenceTraining(PLAN);
    const saved = new Map<number, { position: TrainingPosition; params: Float32Array; velocity: Float32Array }>();
    const first = trainingRun(PLAN);
    first.events = {
      afterStep: (position) => saved.set(position.globalStep, { position, params: first.params.slice(), velocity: first.sgd.velocity!.slice() }),
    };
    await runTraining(first);
    for (const at of [1, 4, STEPS_PER_EPOCH, 11, 3 * STEPS_PER_EPOCH - 1]) {
      const s = saved.get(at)!;
      const run = trainingRun(PLAN);
      run.params.set(s.params);
      run.sgd.velocity!.set(s.velocity);
      run.resumeFrom = s.position;
      run.orderRng = new Rng(777);
      const resumed = await runTraining(run);
      expect(resumed.steps).toBe(ref.steps);
      expect(resumed.epochs.map(mathOf)).toEqual(ref.epochs);
      expect(Array.from(run.params)).toEqual(Array.from(ref.params));
    }
  });

  it('a resumed run still stops at maxSteps counted from the start of training', async () => {
    const { run, result } = await stoppedAfter(3);
    run.stopRequested = () => false;
    run.resumeFrom = result.interrupted!;
    run.maxSteps = 7;
    const resumed = await runTraining(run);
    expect(resumed.steps).toBe(7);
    expect(resumed.epochs.map((r) => r.steps)).toEqual([STEPS_PER_EPOCH, 2]);
  });

  it('hands the event loop a turn while training, so a signal handler can stop an in-process run', async () => {
    const run = trainingRun({ ...PLAN, epochs: 20_000 });
    let stop = false;
    setTimeout(() => (stop = true), 0);
    run.stopRequested = () => stop;
    const result = await runTraining(run);
    expect(result.interrupted).not.toBeNull();
    expect(result.epochs.length).toBeLessThan(20_000);
  });
});

describe('timing', () => {
  it('reports seconds within the wall time, samples per second from them, and adds the seconds spent before a resume', async () => {
    const run = trainingRun(PLAN);
    const t0 = performance.now();
    const result = await runTraining(run);
    const wallSeconds = (performance.now() - t0) / 1000;
    for (const r of result.epochs) {
      expect(r.trainSeconds).toBeGreaterThan(0);
      expect(r.evalSeconds).toBeGreaterThan(0);
      expect(r.trainSeconds + r.evalSeconds).toBeLessThanOrEqual(wallSeconds);
      expect(r.samplesPerSecond).toBeCloseTo(r.examples / r.trainSeconds, 6);
    }
    const positions: TrainingPosition[] = [];
    const stopped = trainingRun(PLAN);
    stopped.events = { afterStep: (p) => positions.push(p) };
    stopped.stopRequested = () => positions.length >= 3;
    const t1 = performance.now();
    const { interrupted } = await runTraining(stopped);
    expect(interrupted!.epochSeconds).toBeGreaterThan(0);
    expect(interrupted!.epochSeconds).toBeLessThanOrEqual((performance.now() - t1) / 1000);
    expect(positions.map((p) => p.epochSeconds)).toEqual([...positions.map((p) => p.epochSeconds)].sort((a, b) => a - b));
    stopped.stopRequested = () => false;
    stopped.events = {};
    stopped.resumeFrom = { ...interrupted!, epochSeconds: 1000 };
    const t2 = performance.now();
    const resumed = await runTraining(stopped);
    const resumedWall = (performance.now() - t2) / 1000;
    expect(resumed.epochs[0]!.trainSeconds).toBeGreaterThan(1000);
    expect(resumed.epochs[0]!.trainSeconds).toBeLessThanOrEqual(1000 + resumedWall);
    expect(resumed.epochs[1]!.trainSeconds).toBeLessThan(1000);
  });

  it("waits for its turn before every step (a benchmark's turn-taking) and leaves the waiting out of the training seconds", async () => {
    const run = trainingRun({ ...PLAN, epochs: 1 });
    const order: string[] = [];
    run.waitForTurn = () => new Promise((resolve) => { order.push('wait'); setTimeout(resolve, 100); });
    run.events = { onStep: () => order.push('step') };
    const result = await runTraining(run);
    expect(order).toEqual(Array.from({ length: STEPS_PER_EPOCH }, () => ['wait', 'step']).flat());
    // five waits of at least 100 ms: counted, they would be at least 0.5 s of a run that trains in milliseconds
    expect(result.epochs[0]!.trainSeconds).toBeLessThan(0.25);
    // the same steps as without turns
    const plain = trainingRun({ ...PLAN, epochs: 1 });
    await runTraining(plain);
    expect(run.params).toEqual(plain.params);
  });
});

describe('profiled steps', () => {
  it('give the same parameters as unprofiled ones, with one record per step and per evaluation', async () => {
    const run = trainingRun(PLAN);
    const profiler = new Profiler(1, 0, 16);
    run.profiler = profiler;
    const result = await runTraining(run);
    const ref = referenceTraining(PLAN);
    expect(Array.from(run.params)).toEqual(Array.from(ref.params));
    expect(result.epochs.map(mathOf)).toEqual(ref.epochs);
    const steps = profiler.steps();
    expect(steps.map((s) => s.step)).toEqual(ref.stepLosses.map((_, i) => i));
    expect(steps.map((s) => s.loss)).toEqual(ref.stepLosses);
    expect(steps.map((s) => s.count)).toEqual([1, 2, 3].flatMap(() => [5, 5, 5, 5, 3]));
    for (const s of steps) {
      expect(s.t0).toBeLessThanOrEqual(s.t1);
      expect(s.t1).toBeLessThanOrEqual(s.t2);
      expect(s.t2).toBeLessThanOrEqual(s.t3);
      expect(s.t3).toBeLessThanOrEqual(s.t4);
      // in-process workers share the coordinator's process: its CPU time is not its own
      expect(s.coordCpuMs).toBeNaN();
    }
    expect(profiler.evals.map((e) => [e.epoch, e.correct, e.total])).toEqual(result.epochs.map((r) => [r.epoch, r.testCorrect, EVAL.count]));
    for (const e of profiler.evals) expect(e.end).toBeGreaterThanOrEqual(e.start);
  });

  it('measure the coordinator CPU of each exchange when the workers are other processes', async () => {
    const network = new Network(SPEC, createJsKernels());
    const inner = new InProcessGroup(SPEC, network.kernels, TRAIN, 1, PLAN.batch);
    const remote: WorkerGroup = { transport: 'ws', world: 1, computeStep: (req) => inner.computeStep(req), close: () => inner.close() };
    const run = trainingRun({ ...PLAN, epochs: 1 }, remote);
    const profiler = new Profiler(1, 0, 16);
    run.profiler = profiler;
    await runTraining(run);
    const steps = profiler.steps();
    for (const s of steps) {
      expect(Number.isFinite(s.coordCpuMs)).toBe(true);
      expect(s.coordCpuMs).toBeGreaterThanOrEqual(0);
    }
    // milliseconds, like the clock: one busy thread spends about as much CPU as time passes
    // (slack for other threads of the process, such as the garbage collector)
    const cpuMs = steps.reduce((a, s) => a + s.coordCpuMs!, 0);
    const exchangeMs = steps.reduce((a, s) => a + s.t2 - s.t1, 0);
    expect(cpuMs).toBeLessThan(4 * exchangeMs + 5);
  });
});

describe('reduceInRankOrder', () => {
  it('by default sums every rank into the buffer, rank by rank, and the losses and counts with them', async () => {
    const network = new Network(SPEC, createJsKernels());
    const group = new InProcessGroup(SPEC, network.kernels, TRAIN, 3, 10);
    const results = await group.computeStep({ step: 0, params: initialParams(network), indices: Uint32Array.from([3, 1, 4, 15, 9, 2, 6, 5]) });
    const gradSum = network.allocParams();
    const reduced = reduceInRankOrder(network, results, gradSum);
    expect(reduced.last).toBeNull();
    expect(reduced.grads).toBe(gradSum);
    const byHand = new Float32Array(gradSum.length);
    for (const r of results) for (let i = 0; i < byHand.length; i++) byHand[i] = byHand[i]! + r.grads[i]!;
    expect(Array.from(reduced.grads)).toEqual(Array.from(byHand));
    expect(reduced.loss).toBe(results[0]!.loss + results[1]!.loss + results[2]!.loss);
    expect(reduced.count).toBe(8);
  });
});

describe('trainStep', () => {
  it('refuses a step whose shards did not sum every example exactly once, before stepping', async () => {
    const network = new Network(SPEC, createJsKernels());
    const inner = new InProcessGroup(SPEC, network.kernels, TRAIN, 2, 10);
    for (const broken of [
      (r: Awaited<ReturnType<WorkerGroup['computeStep']>>) => r.map((x, i) => (i === 1 ? { ...x, count: 0 } : x)),
      (r: Awaited<ReturnType<WorkerGroup['computeStep']>>) => r.map((x, i) => (i === 1 ? { ...x, count: x.count * 2 } : x)),
    ]) {
      const group: WorkerGroup = { transport: 'inproc', world: 2, computeStep: async (req) => broken(await inner.computeStep(req)), close: async () => {} };
      const params = initialParams(network);
      const before = params.slice();
      const sgd = sgdFor(network, PLAN);
      await expect(trainStep({ network, sgd, group, params }, network.allocParams(), 0, Uint32Array.from([0, 1, 2, 3, 4, 5, 6]))).rejects.toThrow();
      expect(params).toEqual(before);
    }
  });

  it('refuses results that are not in rank order', async () => {
    const network = new Network(SPEC, createJsKernels());
    const inner = new InProcessGroup(SPEC, network.kernels, TRAIN, 2, 10);
    const group: WorkerGroup = { transport: 'inproc', world: 2, computeStep: async (req) => (await inner.computeStep(req)).reverse(), close: async () => {} };
    const params = initialParams(network);
    await expect(trainStep({ network, sgd: sgdFor(network, PLAN), group, params }, network.allocParams(), 0, Uint32Array.from([0, 1, 2, 3]))).rejects.toThrow();
  });
});
