/**
 * Everything `dpt bench` concludes from its measured cells, as one plain object (also the --json
 * output): per-cell figures with speedup and efficiency against the baseline, the cost model
 * fitted on all cells, its validation when fitted on the one-worker cells only, the break-even
 * points, the what-if predictions, the verdict, and first of all the answer (answer.ts). Pure: no
 * I/O, no clocks.
 */
import { answer } from './answer.js';
import { breakEven, isBaseline, netKey, speedups, validateOnOneWorker, whatIf, type BreakEven } from './analysis.js';
import type { BenchCell, BenchOutcome, BenchPlan, Machine, MeasuredCell } from './bench-facts.js';
import { HOST_PER_WORKER_TRANSPORTS } from './emulated.js';
import { fitCostModel } from './model.js';
import { verdict } from './verdict.js';
import type { NetShape } from './observe.js';
import { meanEpochs } from './time-to-accuracy.js';
import type { WhatIf } from './what-if.js';

export type { BenchCell, BenchOutcome, BenchPlan, Machine, MeasuredCell } from './bench-facts.js';

/**
 * The cells the cost model is fitted on and checked against: those exchanging fp32 gradients every
 * step. Local SGD skips the exchange on most steps and a 16-bit wire ships other bytes; the
 * model's what-if prices those instead.
 */
export const fitsTheModel = (c: Pick<MeasuredCell, 'averageEvery' | 'wire'>): boolean => c.averageEvery === 1 && (c.wire ?? 'fp32') === 'fp32';

export function buildOutcome(measured: MeasuredCell[], machine: Machine, plan: BenchPlan, w: WhatIf | null, reducePerFloatMs: number): BenchOutcome {
  const obs = measured.map((c) => c.observation);
  const sp = speedups(obs);
  const cells: BenchCell[] = measured.map((c, i) => ({
    ...c, speedup: sp[i]!.speedup, efficiency: sp[i]!.efficiency,
    samplesPerSecond: c.summary.examplesPerStep / (c.observation.stepMs / 1000),
  }));
  // on capped emulated hosts each ws worker had cores of its own (the rest ran on the coordinator's
  // host); without a cap the hosts' processes share the machine's cores as any processes do
  const ownCores = machine.emulated?.cpu != null;
  // local SGD and 16-bit configurations are measured and compared, but neither fit nor check the model
  const perStep = cells.filter(fitsTheModel);
  const perStepObs = perStep.map((c) => c.observation);
  const fit = { cores: machine.cores, reducePerFloatMs, lockstep: machine.lockstep, hostPerWorker: ownCores ? HOST_PER_WORKER_TRANSPORTS : [], averageOnly: plan.averageOnly ?? false };
  const model = fitCostModel(perStepObs, fit);
  const validation = validateOnOneWorker(perStepObs, fit)?.rows ?? null;
  const breakEvens: BreakEven[] = [];
  const parallelWorkers = plan.requestedWorkers.filter((n) => n > 1);
  for (const c of perStep) {
    if (c.workers === 1 && c.transport === 'inproc') continue;
    for (const W of parallelWorkers.length ? parallelWorkers : [2]) {
      if (breakEvens.some((b) => b.transport === c.transport && b.workers === W && b.batch === c.batch && b.net.sizes.join() === c.net.sizes.join())) continue;
      const cell = perStep.find((x) => x.transport === c.transport && x.workers === W && x.batch === c.batch && x.net.sizes.join() === c.net.sizes.join());
      breakEvens.push(breakEven(model, perStepObs, c.transport, W, c.batch, c.net, plan.trainCount, cell ? cell.summary.groups.communication : null));
    }
  }
  const whatIfRows = w ? whatIf(model, perStepObs, w, { trainCount: plan.trainCount, momentum: plan.momentum > 0, epochsToTarget: (net, batch) => epochsToTarget(measured, net, batch) }) : null;
  const partial = { machine, plan, cells, model, validation, breakEvens, whatIf: whatIfRows, whatIfSpec: w };
  // the answer first: JSON keeps this order, and a reader should meet the answer before the detail
  return { answer: answer(cells, plan.epochs !== null, machine), ...partial, verdict: verdict(partial) };
}

/**
 * With --target-accuracy, the epochs one node took to the target at a net and batch (MLPerf mean
 * over its seeds): every configuration computes the same SGD at that global batch, so its epochs
 * are theirs too; null when the target was not set, that batch not run, or no seed reached it.
 */
function epochsToTarget(measured: MeasuredCell[], net: NetShape, batch: number): { target: number; epochs: number } | null {
  const t = measured.find((c) => isBaseline(c) && netKey(c.net) === netKey(net) && c.batch === batch)?.timeToAccuracy;
  const epochs = t ? meanEpochs(t) : null;
  return t && epochs !== null ? { target: t.target, epochs } : null;
}
