/**
 * Everything `dpt bench` concludes from its measured cells, as one plain object (also the --json
 * output): per-cell figures with speedup and efficiency against the baseline, the cost model
 * fitted on all cells, its validation when fitted on the one-worker cells only, the break-even
 * points, the what-if predictions and the verdict. Pure: no I/O, no clocks.
 */
import { breakEven, speedups, validateOnOneWorker, whatIf, type BreakEven, type ValidationRow, type WhatIfRow } from './analysis.js';
import { fitCostModel, type CostModel } from './model.js';
import type { CellObservation, NetShape } from './observe.js';
import type { ProfileSummary } from './summary.js';
import { verdict } from './verdict.js';
import type { WhatIf } from './what-if.js';

export interface MeasuredCell {
  transport: string;
  workers: number;
  batch: number;
  net: NetShape;
  summary: ProfileSummary;
  observation: CellObservation;
  /** accuracy after the cell, and on how many images */
  accuracy: number;
  evalImages: number;
  trainSeconds: number;
  /** per epoch: accuracy and cumulative training seconds (time-to-accuracy curves) */
  epochs: { epoch: number; accuracy: number; seconds: number }[];
  losses: number[];
  /** largest |parameter difference| from the baseline cell at the end (0 for the baseline) */
  maxParamDiff: number;
}

export interface BenchCell extends MeasuredCell {
  speedup: number;
  efficiency: number;
  samplesPerSecond: number;
}

export interface BenchPlan {
  /** measured steps per cell in all, over `repeats` interleaved repetitions */
  steps: number;
  repeats: number;
  burnIn: number;
  epochs: number | null;
  evalLimit: number;
  eta: number;
  seed: number;
  trainCount: number;
  requestedWorkers: number[];
}

export interface Machine {
  cores: number;
  node: string;
  kernels: string;
  cpu: string;
  /** cores this process could use at once, measured during the bench (median) */
  usableCores: number;
  /** 1-minute load average when the bench started and ended: above the core count, another job shared the machine */
  load: [number, number];
  /** κ by net key from the contention probe: ranks on every core at once ÷ one alone (absent: not probed) */
  contention?: Record<string, number>;
  /** by net key, ms of one shard's step on the coordinator's engine by shard size (absent: not probed) */
  computeCurve?: Record<string, Record<number, number>>;
}

export interface BenchOutcome {
  machine: Machine;
  plan: BenchPlan;
  cells: BenchCell[];
  model: CostModel;
  /** model fitted on the one-worker cells only, predicting the multi-worker ones (null: nothing to hold out) */
  validation: ValidationRow[] | null;
  breakEvens: BreakEven[];
  whatIf: WhatIfRow[] | null;
  whatIfSpec: WhatIf | null;
  verdict: string[];
}

export function buildOutcome(measured: MeasuredCell[], machine: Machine, plan: BenchPlan, w: WhatIf | null, reducePerFloatMs: number): BenchOutcome {
  const obs = measured.map((c) => c.observation);
  const sp = speedups(obs);
  const cells: BenchCell[] = measured.map((c, i) => ({
    ...c, speedup: sp[i]!.speedup, efficiency: sp[i]!.efficiency,
    samplesPerSecond: c.summary.examplesPerStep / (c.observation.stepMs / 1000),
  }));
  const model = fitCostModel(obs, { cores: machine.cores, usableCores: machine.usableCores, reducePerFloatMs, contention: machine.contention, computeCurve: machine.computeCurve });
  const validation = validateOnOneWorker(obs, machine.cores, reducePerFloatMs, machine.usableCores, machine.contention, machine.computeCurve)?.rows ?? null;
  const breakEvens: BreakEven[] = [];
  const parallelWorkers = plan.requestedWorkers.filter((n) => n > 1);
  for (const c of cells) {
    if (c.workers === 1 && c.transport === 'inproc') continue;
    for (const W of parallelWorkers.length ? parallelWorkers : [2]) {
      if (breakEvens.some((b) => b.transport === c.transport && b.workers === W && b.batch === c.batch && b.net.sizes.join() === c.net.sizes.join())) continue;
      const cell = cells.find((x) => x.transport === c.transport && x.workers === W && x.batch === c.batch && x.net.sizes.join() === c.net.sizes.join());
      breakEvens.push(breakEven(model, obs, c.transport, W, c.batch, c.net, plan.trainCount, cell ? cell.summary.groups.communication : null));
    }
  }
  const whatIfRows = w ? whatIf(model, obs, w) : null;
  const partial = { machine, plan, cells, model, validation, breakEvens, whatIf: whatIfRows, whatIfSpec: w };
  return { ...partial, verdict: verdict(partial) };
}
