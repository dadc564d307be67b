/**
 * One cell of `dpt bench`: a configuration (transport, workers, local SGD's K) at a batch, trained
 * from the session's initial parameters with the same seeded data order as every other cell,
 * profiled. runCell trains one cell on its own, through runTraining (time to accuracy,
 * `--epochs`); fixed-steps cells run side by side instead (side-by-side.ts). A cell may run as
 * several repetitions; mergeCell pools their measured steps. The group is created through
 * startGroup, like `dpt train` does, and always closed.
 */
import { stepsPerEpoch } from '../../src/data/batches.js';
import { slice } from '../../src/data/mnist.js';
import { netShape, observeCell, type CellObservation, type NetShape } from '../../src/profile/observe.js';
import { Profiler, type StepRecord } from '../../src/profile/profiler.js';
import { summarizeSteps, type ProfileSummary } from '../../src/profile/summary.js';
import type { TransportName, WireFormat } from '../../src/config.js';
import { cellName } from '../../src/profile/verdict.js';
import { cellConfig, type BenchConfiguration } from './configurations.js';
import { startGroup, trainingRun, type Session } from '../../coordinator/session.js';
import { runTraining, type EpochReport } from '../../coordinator/trainer.js';

export interface CellPlan {
  /** measured steps of this repetition (ignored when epochs is set) */
  steps: number;
  burnIn: number;
  epochs: number | null;
  evalLimit: number;
  /** stop after the first epoch whose test accuracy reaches this (time to accuracy over seeds); null: run every epoch */
  target?: number | null;
}

/** One repetition of a cell. */
export interface CellRun {
  world: number;
  measured: StepRecord[];
  epochs: EpochReport[];
  /**
   * per epoch, wall-clock seconds from just before the first step to the end of that epoch's
   * evaluation: data order, training, waiting and evaluation are all in; starting the group
   * (spawning threads or workers) and closing it are not, as MLPerf leaves system setup out
   */
  wallSeconds: number[];
  /** the parameters the run ended with (compared with the baseline's) */
  params: Float32Array;
}

export interface CellResult {
  transport: TransportName;
  workers: number;
  /** steps between two averagings of the ranks' parameters (1: every step) */
  averageEvery: number;
  wire: WireFormat;
  batch: number;
  net: NetShape;
  /** over the measured steps of every repetition; losses and walls of the first repetition only (one trajectory) */
  summary: ProfileSummary;
  observation: CellObservation;
  epochs: EpochReport[];
  /** accuracy after the cell (fixed-steps cells: on the first evalLimit images of the eval set) */
  accuracy: number;
  evalImages: number;
  trainSeconds: number;
  repeats: number;
  params: Float32Array;
}

export async function runCell(session: Session, initial: Float32Array, configuration: BenchConfiguration, batch: number, plan: CellPlan): Promise<CellRun> {
  const perEpoch = stepsPerEpoch(session.train.count, batch);
  const total = plan.epochs === null ? plan.burnIn + plan.steps : plan.epochs * perEpoch;
  const config = cellConfig(session.config, configuration, batch, plan.epochs ?? Math.ceil(total / perEpoch), plan.epochs === null ? total : null);
  const cellSession: Session = { ...session, config };
  session.params.set(initial);
  const group = await startGroup(cellSession);
  try {
    const run = trainingRun(cellSession, group);
    if (plan.epochs === null) run.evalSet = slice(session.evalSet, 0, Math.min(plan.evalLimit, session.evalSet.count));
    // the profiler records a round of K steps as one record: the burn-in is as many steps, in rounds
    const burnIn = configuration.averageEvery > 1 ? Math.ceil(plan.burnIn / configuration.averageEvery) : plan.burnIn;
    const profiler = new Profiler(group.world, burnIn, total);
    run.profiler = profiler;
    const target = plan.target ?? null;
    let reached = false;
    const wallSeconds: number[] = [];
    run.events = { ...run.events, onEpoch: (e) => {
      wallSeconds.push((performance.now() - t0) / 1000);
      reached = target !== null && e.testCorrect / e.testTotal >= target;
    } };
    run.stopRequested = () => reached;
    const t0 = performance.now();
    const result = await runTraining(run);
    if (profiler.stepCount <= burnIn) throw new RangeError(`${cellName(configuration)} at batch ${batch} ran ${profiler.stepCount} steps, not more than the ${burnIn} burn-in steps`);
    return { world: group.world, measured: profiler.measuredSteps(), epochs: result.epochs, wallSeconds, params: Float32Array.from(session.params) };
  } finally {
    await group.close();
  }
}

export function mergeCell(configuration: BenchConfiguration, batch: number, sizes: number[], burnIn: number, runs: CellRun[]): CellResult {
  const { transport, workers, averageEvery, wire } = configuration;
  const net = netShape(sizes);
  const all = runs.flatMap((r) => r.measured);
  // per step: a record of a run averaging every K steps is a round of K
  const first = summarizeSteps(runs[0]!.measured, runs[0]!.world, burnIn, [], batch);
  const summary = { ...summarizeSteps(all, runs[0]!.world, burnIn, [], batch), losses: first.losses, walls: first.walls };
  const last = runs.at(-1)!;
  const lastEpoch = last.epochs.at(-1)!;
  return {
    transport, workers, averageEvery, wire, batch, net, summary, observation: observeCell(transport, batch, net, all),
    epochs: last.epochs, accuracy: lastEpoch.testCorrect / lastEpoch.testTotal, evalImages: lastEpoch.testTotal,
    trainSeconds: last.epochs.reduce((a, e) => a + e.trainSeconds, 0), repeats: runs.length, params: last.params,
  };
}
