/**
 * The shapes of what `dpt bench` concludes (also its --json output): measured cells, the plan,
 * the machine, the outcome. Types only, so the verdict and the outcome's builder can both read
 * them without importing each other.
 */
import type { BreakEven, ValidationRow, WhatIfRow } from './analysis.js';
import type { CostModel, LockstepTable } from './model.js';
import type { CellObservation, NetShape } from './observe.js';
import type { ProfileSummary } from './summary.js';
import type { TimeToAccuracy } from './time-to-accuracy.js';
import type { WhatIf } from './what-if.js';

/**
 * A configuration is how the workers run, how many, and how often their parameters are averaged
 * (threads x2; threads x2 K=16 with local SGD); a cell is one configuration
 * measured at one net and batch, a point of the bench's grid. The user reads "configuration" in
 * every output; the code says cell where the net and batch are part of it.
 */
export interface MeasuredCell {
  transport: string;
  workers: number;
  /** local SGD: steps between two averagings of the ranks' parameters (1: the gradients are averaged every step) */
  averageEvery: number;
  /** what crossed the WebSocket (fp32 where nothing did); absent in facts from before formats were compared */
  wire?: string;
  batch: number;
  net: NetShape;
  summary: ProfileSummary;
  observation: CellObservation;
  /** accuracy after the cell, and on how many images */
  accuracy: number;
  evalImages: number;
  trainSeconds: number;
  /** per epoch: accuracy and cumulative training seconds (time-to-accuracy curves; with --target-accuracy, the first seed's wall clock) */
  epochs: { epoch: number; accuracy: number; seconds: number }[];
  /** with --target-accuracy: every seed's time to it and their MLPerf mean (null otherwise) */
  timeToAccuracy: TimeToAccuracy | null;
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
  /** ws: the coordinator computed no rank (--average-only); absent: it computed rank 0 of two or more */
  averageOnly?: boolean;
  /** measured steps per cell in all, over `repeats` interleaved repetitions */
  steps: number;
  repeats: number;
  burnIn: number;
  epochs: number | null;
  /** --target-accuracy, its --max-epochs and --seeds (targetAccuracy null: not that mode) */
  targetAccuracy: number | null;
  maxEpochs: number;
  seeds: number[];
  evalLimit: number;
  eta: number;
  /** the run's momentum (with local SGD each rank's velocity then travels too) */
  momentum: number;
  seed: number;
  trainCount: number;
  requestedWorkers: number[];
  /** --average-every's list, and the local SGD settings of its K > 1 */
  averageEvery: number[];
  localSgdAfter: number;
  averageOptimizerState: boolean;
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
  /** dpt bench --emulate: the hosts every configuration, the baseline too, ran on; null: this machine as it is */
  emulated: EmulatedHosts | null;
}

/**
 * The hosts of `dpt bench --emulate`: the coordinator host runs the bench with every inproc and
 * threads configuration, and each ws worker process runs on a worker host of its own.
 */
export interface EmulatedHosts {
  /** cores each host may use (null: no cap) */
  cpu: number | null;
  /** every host's link, both ways (null: not shaped) */
  bandwidthBitsPerS: number | null;
  /** one-way latency asked for (null: none) */
  latencyMs: number | null;
  /** whether that latency was added: the kernel has sch_netem */
  netem: boolean;
  /** worker hosts built: one per worker process of the largest ws configuration */
  workerHosts: number;
}

/** The answer a bench leads with (answer.ts builds it): per net, its configurations and one sentence of advice. */
export interface AnswerRow {
  config: string;
  transport: string;
  workers: number;
  averageEvery: number;
  wire: string;
  batch: number;
  samplesPerSecond: number;
  /** seconds of training to the net's targetAccuracy (--epochs; with --target-accuracy the MLPerf mean over seeds) */
  secondsToAccuracy: number | null;
  /** with --target-accuracy: one node's secondsToAccuracy at the same batch ÷ this row's (null otherwise, or when either never reached it) */
  speedupToAccuracy: number | null;
  /** with --target-accuracy: seeds that never reached it, of how many (null otherwise) */
  misses: number | null;
  seedCount: number | null;
  /** median step of one node (inproc x1) at the same batch ÷ this configuration's: the cell's speedup */
  speedup: number;
  /** ranks busy at once, mean over the steps (1: one after another) */
  concurrency: number;
  /** null for the single-node baseline; true when more than one worker, running at the same time, ran faster than it by more than the break-even band (verdict.ts) */
  paysOff: boolean | null;
}

export interface NetAnswer {
  net: string;
  /** with --epochs: the best test accuracy every configuration of this net reached; with --target-accuracy: that target (null otherwise) */
  targetAccuracy: number | null;
  rows: AnswerRow[];
  /** the configuration the advice names (null when nothing with more than one worker was measured) */
  best: { transport: string; workers: number; averageEvery: number; wire: string; batch: number } | null;
  advice: string;
}

export interface BenchOutcome {
  /** first, so that a reader of the JSON meets the answer before the detail */
  answer: NetAnswer[];
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
