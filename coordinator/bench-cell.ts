/**
 * One cell of `dpt bench`: a configuration (transport, workers, batch) trained from the session's
 * initial parameters with the same seeded data order as every other cell, profiled, and turned
 * into a summary, a cost-model observation and curves. The group is created through startGroup,
 * like `dpt train` does, and always closed.
 */
import { stepsPerEpoch } from '../src/data/batches.js';
import { slice } from '../src/data/mnist.js';
import { netShape, observeCell, type CellObservation, type NetShape } from '../src/profile/observe.js';
import { Profiler } from '../src/profile/profiler.js';
import { summarize, type ProfileSummary } from '../src/profile/summary.js';
import type { TransportName } from './worker-group.js';
import { startGroup, trainingRun, type Session } from './session.js';
import { runTraining, type EpochReport } from './trainer.js';

export interface CellPlan {
  steps: number;
  burnIn: number;
  epochs: number | null;
  evalLimit: number;
}

export interface CellResult {
  transport: TransportName;
  workers: number;
  batch: number;
  net: NetShape;
  summary: ProfileSummary;
  observation: CellObservation;
  epochs: EpochReport[];
  /** training loss per measured step (mean per example) */
  losses: number[];
  /** accuracy after the cell (fixed-steps cells: on the first evalLimit images of the eval set) */
  accuracy: number;
  evalImages: number;
  trainSeconds: number;
  /** the parameters the cell ended with (compared with the baseline's) */
  params: Float32Array;
}

export async function runCell(session: Session, initial: Float32Array, transport: TransportName, workers: number, batch: number, plan: CellPlan): Promise<CellResult> {
  const perEpoch = stepsPerEpoch(session.train.count, batch);
  const total = plan.epochs === null ? plan.burnIn + plan.steps : plan.epochs * perEpoch;
  const config = {
    ...session.config, transport, workers, batch,
    epochs: plan.epochs ?? Math.ceil(total / perEpoch), maxSteps: plan.epochs === null ? total : null,
  };
  const cellSession: Session = { ...session, config };
  session.params.set(initial);
  const group = await startGroup(cellSession);
  try {
    const run = trainingRun(cellSession, group);
    if (plan.epochs === null) run.evalSet = slice(session.evalSet, 0, Math.min(plan.evalLimit, session.evalSet.count));
    const profiler = new Profiler(group.world, plan.burnIn, total);
    run.profiler = profiler;
    const result = await runTraining(run);
    if (profiler.stepCount <= plan.burnIn) throw new RangeError(`cell ${transport} x${workers} batch ${batch} ran ${profiler.stepCount} steps, not more than the ${plan.burnIn} burn-in steps`);
    const net = netShape(config.spec.sizes);
    const summary = summarize(profiler);
    const last = result.epochs.at(-1)!;
    return {
      transport, workers, batch, net, summary,
      observation: observeCell(transport, batch, net, profiler.measuredSteps()),
      epochs: result.epochs, losses: summary.losses,
      accuracy: last.testCorrect / last.testTotal, evalImages: last.testTotal,
      trainSeconds: result.epochs.reduce((a, e) => a + e.trainSeconds, 0),
      params: Float32Array.from(session.params),
    };
  } finally {
    await group.close();
  }
}
