/**
 * The shapes of what `dpt bench` concludes (also its --json output): measured cells, the plan,
 * the machine, the outcome. Types only, so the verdict and the outcome's builder can both read
 * them without importing each other.
 */
import type { BreakEven, ValidationRow, WhatIfRow } from './analysis.js';
import type { CostModel, LockstepTable } from './model.js';
import type { CellObservation, NetShape } from './observe.js';
import type { ProfileSummary } from './summary.js';
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
  /** 1-minute load average when the bench started and ended: above the core count, another job shared the machine */
  load: [number, number];
  /** by net key, the lockstep probe: ms per step of k ranks at once on n-example shards (bench/harness/lockstep.ts) */
  lockstep: Record<string, LockstepTable>;
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
