/**
 * The coordinator's step loop. One design decision shapes it: the loop is the same for every
 * transport. It owns the seeded epoch permutation, asks the worker group for the shards' gradient
 * sums of each global batch, adds them in rank order, divides once by the true example count
 * (inside the optimizer), steps, and evaluates after each epoch. World size 1 in-process is the
 * single-node baseline.
 */
import { batchIndices, epochPermutation, stepsPerEpoch } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { Network, Workspace } from '../src/model/network.js';
import { learningRate, type LrSchedule } from '../src/optim/lr-schedule.js';
import type { LocalRound, LocalSgdPlan } from '../src/optim/local-sgd.js';
import type { Sgd } from '../src/optim/sgd.js';
import type { Profiler } from '../src/profile/profiler.js';
import type { Rng, RngState } from '../src/tensor/rng.js';
import { LocalAveraging, roundLength } from './local-averaging.js';
import { OUT_OF_PROCESS, type ShardResult, type WorkerGroup } from './worker-group.js';

export interface EpochReport {
  epoch: number;
  steps: number;
  /** examples that contributed a gradient this epoch */
  examples: number;
  /** mean loss per example over the epoch's training batches */
  loss: number;
  testCorrect: number;
  testTotal: number;
  trainSeconds: number;
  evalSeconds: number;
  samplesPerSecond: number;
}

export interface TrainingEvents {
  onStep?(stepInEpoch: number, stepsInEpoch: number, epoch: number): void;
  onEpoch?(report: EpochReport): void;
  /** after every step, with where training stands (checkpointing hooks in here) */
  afterStep?(position: TrainingPosition): void;
}

/**
 * Where training stands between two steps: enough, with the parameters and optimizer state, to
 * continue bit-identically. The order rng's state at the start of the epoch regenerates the
 * epoch's permutation.
 */
export interface TrainingPosition {
  /** epoch in progress, 1-based */
  epoch: number;
  /** the next step to run within that epoch */
  stepInEpoch: number;
  globalStep: number;
  epochLoss: number;
  epochExamples: number;
  /** training seconds already spent in this epoch (before an interruption) */
  epochSeconds: number;
  orderRngAtEpochStart: RngState;
  reports: EpochReport[];
  /** local SGD with momentum kept per rank: each rank's velocity */
  rankVelocities?: Float32Array[];
}

export interface TrainingRun {
  network: Network;
  sgd: Sgd;
  group: WorkerGroup;
  params: Float32Array;
  train: LabelledImages;
  evalSet: LabelledImages;
  evalWorkspace: Workspace;
  orderRng: Rng;
  epochs: number;
  batch: number;
  shuffle: boolean;
  maxSteps: number | null;
  /** when set, η of every step comes from it (a function of the global step); when absent η stays the optimizer's */
  lrSchedule?: LrSchedule | null;
  /** when set (K > 1), the ranks run local SGD and the coordinator averages their parameters every K steps */
  localSgd?: LocalSgdPlan | null;
  events?: TrainingEvents;
  /** when set, every step and evaluation is timed into it; when absent the loop does no timing */
  profiler?: Profiler | null;
  /** continue from here instead of the start (a resumed checkpoint) */
  resumeFrom?: TrainingPosition;
  /** polled between steps: true ends training early at a step boundary (SIGINT, SIGTERM) */
  stopRequested?: () => boolean;
  /**
   * Awaited before every step: the run waits there for its turn (configurations taking turns in
   * `dpt bench`). Time spent waiting is not training time.
   */
  waitForTurn?: () => Promise<void>;
}

export interface TrainingResult {
  epochs: EpochReport[];
  steps: number;
  best: EpochReport | null;
  /** set when training stopped early on request: where it stood */
  interrupted: TrainingPosition | null;
}

export async function runTraining(run: TrainingRun): Promise<TrainingResult> {
  const { network, sgd, group, params, train, batch } = run;
  const prof = run.profiler ?? null;
  const schedule = run.lrSchedule ?? null;
  const gradSum = network.allocParams();
  const steps = stepsPerEpoch(train.count, batch);
  const resume = run.resumeFrom;
  const reports: EpochReport[] = resume ? [...resume.reports] : [];
  let globalStep = resume?.globalStep ?? 0;
  const limitReached = () => run.maxSteps !== null && globalStep >= run.maxSteps;
  // kept across epochs: with fast kernels a whole epoch (and its evaluation) can take under 50 ms,
  // and a clock reset every epoch would never yield, so SIGINT would wait for the end of training
  let lastYield = performance.now();
  const averaging = run.localSgd ? new LocalAveraging(sgd, group.world, run.localSgd, resume?.rankVelocities) : null;
  for (let epoch = resume?.epoch ?? 1; epoch <= run.epochs && !limitReached(); epoch++) {
    const resuming = resume !== undefined && epoch === resume.epoch;
    if (resuming) run.orderRng.setState(resume.orderRngAtEpochStart);
    const orderRngAtEpochStart = run.orderRng.getState();
    const perm = epochPermutation(train.count, run.orderRng, run.shuffle);
    let lossSum = resuming ? resume.epochLoss : 0;
    let examples = resuming ? resume.epochExamples : 0;
    const priorSeconds = resuming ? resume.epochSeconds : 0;
    let s = resuming ? resume.stepInEpoch : 0;
    const t0 = performance.now();
    let waitedMs = 0;
    const epochSeconds = () => priorSeconds + (performance.now() - t0 - waitedMs) / 1000;
    // post-local SGD: per-step averaging for the first epochs, then rounds of up to K steps
    const local = averaging !== null && epoch > averaging.plan.afterEpochs ? averaging : null;
    for (let n = 1; s < steps && !limitReached(); s += n) {
      // An in-process step resolves without I/O, so a loop of them would never let signals,
      // timers or sockets be served: hand the event loop a turn every 50 ms.
      if (performance.now() - lastYield > 50) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
      if (run.waitForTurn) {
        const w0 = performance.now();
        await run.waitForTurn();
        waitedMs += performance.now() - w0;
      }
      let reduced: { loss: number; count: number };
      if (local !== null) {
        n = roundLength(s, steps, local.plan.every, run.maxSteps === null ? Infinity : run.maxSteps - globalStep);
        const round = local.round(roundBatches(perm.length, s, n, batch), roundEtas(sgd.options.eta, schedule, globalStep, n, steps));
        const indices = perm.subarray(s * batch, Math.min(perm.length, (s + n) * batch));
        reduced = await localRound(run, local, prof, gradSum, globalStep, indices, round);
      } else {
        if (schedule !== null) sgd.setEta(learningRate(globalStep, steps, schedule));
        // one null check per step: without a profiler this is the plain step
        reduced = prof === null
          ? await trainStep(run, gradSum, globalStep, batchIndices(perm, s, batch))
          : await profiledTrainStep(run, prof, gradSum, globalStep, perm, s, batch);
      }
      lossSum += reduced.loss;
      examples += reduced.count;
      globalStep += n;
      run.events?.onStep?.(s + n, steps, epoch);
      if (run.events?.afterStep || run.stopRequested?.()) {
        const rankVelocities = averaging?.savedVelocities();
        const position: TrainingPosition = {
          epoch, stepInEpoch: s + n, globalStep, epochLoss: lossSum, epochExamples: examples,
          epochSeconds: epochSeconds(), orderRngAtEpochStart, reports: [...reports], ...(rankVelocities ? { rankVelocities } : {}),
        };
        run.events?.afterStep?.(position);
        if (run.stopRequested?.() && s + n < steps) return finish(reports, globalStep, position);
      }
    }
    const trainSeconds = epochSeconds();
    const e0 = performance.now();
    const testCorrect = network.evaluate(params, run.evalWorkspace, run.evalSet);
    if (prof !== null) prof.recordEval(epoch, e0, performance.now(), testCorrect, run.evalSet.count);
    const report: EpochReport = {
      epoch, steps: s, examples, loss: examples > 0 ? lossSum / examples : NaN,
      testCorrect, testTotal: run.evalSet.count, trainSeconds,
      evalSeconds: (performance.now() - e0) / 1000,
      samplesPerSecond: examples / trainSeconds,
    };
    reports.push(report);
    run.events?.onEpoch?.(report);
    if (run.stopRequested?.() && epoch < run.epochs && !limitReached()) {
      const rankVelocities = averaging?.savedVelocities();
      return finish(reports, globalStep, {
        epoch: epoch + 1, stepInEpoch: 0, globalStep, epochLoss: 0, epochExamples: 0, epochSeconds: 0,
        orderRngAtEpochStart: run.orderRng.getState(), reports: [...reports], ...(rankVelocities ? { rankVelocities } : {}),
      });
    }
  }
  return finish(reports, globalStep, null);
}

function finish(reports: EpochReport[], steps: number, interrupted: TrainingPosition | null): TrainingResult {
  const best = reports.reduce<EpochReport | null>((b, r) => (b === null || r.testCorrect > b.testCorrect ? r : b), null);
  return { epochs: reports, steps, best, interrupted };
}

/** One SGD step on one global batch: shard sums from the group, rank-order reduction, update. */
export async function trainStep(run: Pick<TrainingRun, 'network' | 'sgd' | 'group' | 'params'>, gradSum: Float32Array,
  step: number, indices: Uint32Array): Promise<{ loss: number; count: number }> {
  const results = await run.group.computeStep({ step, params: run.params, indices });
  const reduced = reduceInRankOrder(run.network, results, gradSum, run.sgd.plain);
  checkExactlyOnce(step, reduced.count, indices.length);
  run.sgd.step(run.params, reduced.grads, reduced.count, reduced.last);
  return reduced;
}

/** The global batch sizes of the n steps from step s of an epoch over `examples` examples. */
function roundBatches(examples: number, s: number, n: number, batch: number): number[] {
  return Array.from({ length: n }, (_, j) => Math.min(batch, examples - (s + j) * batch));
}

function roundEtas(eta: number, schedule: LrSchedule | null, globalStep: number, n: number, steps: number): number[] {
  return Array.from({ length: n }, (_, j) => (schedule === null ? eta : learningRate(globalStep + j, steps, schedule)));
}

/**
 * One round of local SGD: the ranks step their own copies through the round's batches, their
 * weighted deltas are added in rank order, and the parameters move to the weighted average.
 * Profiled as one record (its count is the round's examples).
 */
async function localRound(run: Pick<TrainingRun, 'network' | 'group' | 'params'>, averaging: LocalAveraging, prof: Profiler | null,
  gradSum: Float32Array, step: number, indices: Uint32Array, round: LocalRound): Promise<{ loss: number; count: number }> {
  const t0 = performance.now();
  const cpu0 = prof !== null && coordinatorCpuIsExchange(run.group) ? process.cpuUsage() : null;
  const results = await run.group.computeStep({ step, params: run.params, indices, local: round });
  const cpu = cpu0 === null ? null : process.cpuUsage(cpu0);
  const t2 = performance.now();
  const reduced = reduceInRankOrder(run.network, results, gradSum);
  checkExactlyOnce(step, reduced.count, indices.length);
  const t3 = performance.now();
  averaging.absorb(run.params, reduced.grads, reduced.count, results);
  if (prof !== null) prof.recordStep(step, t0, t0, results, t2, t3, performance.now(), reduced.loss, reduced.count, cpu === null ? NaN : (cpu.user + cpu.system) / 1000);
  return reduced;
}

/**
 * Whether the coordinator process's CPU time during an exchange is its own work on that exchange
 * (σ in the cost model): workers in other processes, and no rank computed in this one.
 */
function coordinatorCpuIsExchange(group: WorkerGroup): boolean {
  return OUT_OF_PROCESS.has(group.transport) && !group.coordinatorComputes;
}

/** Exactly-once accounting: the shards summed every example of the batch, no more, whatever workers were lost. */
function checkExactlyOnce(step: number, counted: number, batch: number): void {
  if (counted !== batch) throw new Error(`step ${step}: the shards summed ${counted} examples but the batch has ${batch}: a shard was lost or counted twice`);
}

/** trainStep with the coordinator's timestamps around each part, recorded into the profiler. */
export async function profiledTrainStep(run: Pick<TrainingRun, 'network' | 'sgd' | 'group' | 'params'>, prof: Profiler, gradSum: Float32Array,
  step: number, perm: Uint32Array, s: number, batch: number): Promise<{ loss: number; count: number }> {
  const t0 = performance.now();
  const indices = batchIndices(perm, s, batch);
  const t1 = performance.now();
  // the coordinator's CPU during the exchange (~1.4 µs), where the process's CPU is its own alone:
  // in-process and thread workers add theirs, and so does a rank the coordinator computes itself
  const cpu0 = coordinatorCpuIsExchange(run.group) ? process.cpuUsage() : null;
  const results = await run.group.computeStep({ step, params: run.params, indices });
  const cpu = cpu0 === null ? null : process.cpuUsage(cpu0);
  const t2 = performance.now();
  const reduced = reduceInRankOrder(run.network, results, gradSum, run.sgd.plain);
  checkExactlyOnce(step, reduced.count, indices.length);
  const t3 = performance.now();
  run.sgd.step(run.params, reduced.grads, reduced.count, reduced.last);
  const t4 = performance.now();
  prof.recordStep(step, t0, t1, results, t2, t3, t4, reduced.loss, reduced.count, cpu === null ? NaN : (cpu.user + cpu.system) / 1000);
  return reduced;
}

/**
 * Σ over ranks of the shard sums, added in rank order (never arrival order) so the result is
 * the same whichever worker was fastest. One rank needs no copy: its buffer is the sum. With
 * `fuseLast` (plain SGD) the last rank's sum is left out as `last`, for the optimizer to add on
 * its way through memory (Sgd.step's `plus`): the same additions in the same order, one pass less.
 */
export function reduceInRankOrder(network: Network, results: ShardResult[], gradSum: Float32Array, fuseLast = false):
  { grads: Float32Array; last: Float32Array | null; loss: number; count: number } {
  let loss = 0;
  let count = 0;
  for (let r = 0; r < results.length; r++) {
    if (results[r]!.rank !== r) throw new Error(`results out of rank order: position ${r} holds rank ${results[r]!.rank}`);
    loss += results[r]!.loss;
    count += results[r]!.count;
  }
  if (results.length === 1) return { grads: results[0]!.grads, last: null, loss, count };
  const last = fuseLast ? results.at(-1)!.grads : null;
  if (fuseLast && results.length === 2) return { grads: results[0]!.grads, last, loss, count };
  const k = network.kernels;
  k.zero(gradSum, gradSum.length);
  for (let r = 0; r < results.length - (fuseLast ? 1 : 0); r++) k.addInto(gradSum, results[r]!.grads, gradSum.length);
  return { grads: gradSum, last, loss, count };
}
