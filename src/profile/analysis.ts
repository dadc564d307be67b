/**
 * Questions asked of the measurements and the cost model: speedup and efficiency against the
 * single-node baseline (in-process, one worker, same net and batch, same run); how well a model
 * fitted on the one-worker cells predicts the multi-worker ones; the communication budget a
 * configuration has before it stops paying off; the smallest batch at which it would pay off;
 * and what-if scenarios.
 */
import { fitCostModel, predictStep, type CostModel, type FitOptions, type NetworkWhatIf, type Prediction } from './model.js';
import { netShape, type CellObservation, type NetShape } from './observe.js';
import { stepsPerEpoch } from '../data/batches.js';
import { WIRE_ELEMENT_BYTES, WIRE_TRANSPORTS, type WhatIf, type WireName } from './what-if.js';

export const BASELINE_TRANSPORT = 'inproc';
export const netKey = (n: NetShape): string => n.sizes.join('-');
export const isBaseline = (c: { transport: string; workers: number }): boolean => c.transport === BASELINE_TRANSPORT && c.workers === 1;

export function baselineOf(cells: CellObservation[], net: NetShape, batch: number): CellObservation | undefined {
  return cells.find((c) => isBaseline(c) && netKey(c.net) === netKey(net) && c.batch === batch);
}

export interface SpeedupRow {
  cell: CellObservation;
  speedup: number;
  efficiency: number;
}

export function speedups(cells: CellObservation[]): SpeedupRow[] {
  return cells.map((cell) => {
    const base = baselineOf(cells, cell.net, cell.batch);
    const speedup = base ? base.stepMs / cell.stepMs : NaN;
    return { cell, speedup, efficiency: speedup / cell.workers };
  });
}

export interface ValidationRow {
  cell: CellObservation;
  /** the measured baseline divided by the predicted speedup */
  predictedMs: number;
  predictedSpeedup: number;
  measuredSpeedup: number;
  /** predicted / measured speedup − 1 */
  error: number;
  /** what the prediction of this cell assumed that no measurement showed (model.ts Prediction) */
  assumptions: string[];
}

/** Fits on the one-worker cells only and predicts every multi-worker cell. Null when there is nothing to hold out. */
export function validateOnOneWorker(cells: CellObservation[], o: Omit<FitOptions, 'concurrencyEvidence'>): { model: CostModel; rows: ValidationRow[] } | null {
  const single = cells.filter((c) => c.workers === 1);
  const held = cells.filter((c) => c.workers > 1 && single.some((s) => s.transport === c.transport));
  if (held.length === 0) return null;
  const model = fitCostModel(single, { ...o, concurrencyEvidence: held });
  const rows = held.flatMap((cell) => {
    const base = baselineOf(cells, cell.net, cell.batch);
    if (!base) return [];
    // the reference is the measured single-node step (a one-worker cell the model is fitted on),
    // not the model's own prediction of it: scaling by that prediction carried its error on the
    // baseline's compute (up to 2x under an emulated host's cpu cap, where the lockstep probe and
    // the cells ran minutes apart) into every cell, also those whose step is nearly all exchange
    // (emulated hosts, both nets: 2-4 of 24 cells within 15% that way, 16-18 of 24 this way)
    const prediction = predictStep(model, { transport: cell.transport, workers: cell.workers, batch: cell.batch, net: cell.net });
    const predictedMs = prediction.stepMs;
    const predictedSpeedup = base.stepMs / predictedMs;
    const measuredSpeedup = base.stepMs / cell.stepMs;
    return [{ cell, predictedMs, predictedSpeedup, measuredSpeedup, error: predictedSpeedup / measuredSpeedup - 1, assumptions: prediction.assumptions }];
  });
  return { model, rows };
}

export interface BreakEven {
  transport: string;
  workers: number;
  batch: number;
  net: NetShape;
  /** single-node step time (measured when that cell ran, else predicted) */
  baselineMs: number;
  /** communication per step below which W workers beat one node */
  budgetMs: number;
  /** communication per step: measured (coordinator view) when the cell ran, else predicted */
  communicationMs: number;
  measured: boolean;
  /** smallest power-of-two batch (≤ maxBatch) from which on the model predicts a speedup above 1; null if none */
  payingBatch: number | null;
}

/**
 * measuredComm: the measured communication per step of that cell (coordinator view), when it
 * ran. The budget is the baseline minus everything else the W-worker step costs.
 */
export function breakEven(model: CostModel, cells: CellObservation[], transport: string, workers: number, batch: number, net: NetShape,
  maxBatch: number, measuredComm: number | null, network: NetworkWhatIf | null = null): BreakEven {
  const base = baselineOf(cells, net, batch);
  const baselineMs = base ? base.stepMs : predictStep(model, { transport: BASELINE_TRANSPORT, workers: 1, batch, net }).stepMs;
  const p = predictStep(model, { transport, workers, batch, net, network });
  const cell = cells.find((c) => c.transport === transport && c.workers === workers && c.batch === batch && netKey(c.net) === netKey(net));
  const nonCommMs = cell && measuredComm !== null ? cell.stepMs - measuredComm : p.stepMs - p.communicationMs;
  return {
    transport, workers, batch, net, baselineMs, budgetMs: baselineMs - nonCommMs,
    communicationMs: cell && measuredComm !== null ? measuredComm : p.communicationMs, measured: cell !== undefined && measuredComm !== null,
    payingBatch: payingBatch(model, transport, workers, net, maxBatch, network),
  };
}

/** The smallest power-of-two batch (≤ maxBatch) from which on every larger one is predicted to pay off; null if the largest does not. */
export function payingBatch(model: CostModel, transport: string, workers: number, net: NetShape, maxBatch: number, network: NetworkWhatIf | null = null): number | null {
  let from: number | null = null;
  for (let b = 1; b <= maxBatch; b *= 2) {
    const base = predictStep(model, { transport: BASELINE_TRANSPORT, workers: 1, batch: b, net }).stepMs;
    const pays = predictStep(model, { transport, workers, batch: b, net, network }).stepMs < base;
    if (!pays) from = null;
    else from ??= b;
  }
  return from;
}

export interface WhatIfRow {
  transport: string;
  workers: number;
  batch: number;
  net: NetShape;
  cores: number;
  network: NetworkWhatIf | null;
  /** steps per exchange (1: every step) */
  averageEvery: number;
  /** format on the wire; null where nothing crosses one (shared memory, no network) */
  wire: WireName | null;
  prediction: Prediction;
  baselineMs: number;
  speedup: number;
  samplesPerSecond: number;
  /** predicted seconds of one epoch's training steps (evaluation left out) */
  epochSeconds: number;
  /** with --target-accuracy: the measured epochs to the target at this net and batch × epochSeconds (null otherwise, or none measured there) */
  timeToAccuracy: { target: number; epochs: number; seconds: number } | null;
}

export interface WhatIfContext {
  /** training examples in an epoch */
  trainCount: number;
  /** the run's momentum is on: with average-every > 1 each rank's velocity travels too */
  momentum: boolean;
  /** with --target-accuracy: the measured epochs to the target at a net and batch (null: not measured there) */
  epochsToTarget?: (net: NetShape, batch: number) => { target: number; epochs: number } | null;
}

/**
 * Every combination the what-if names, the rest taken from the measured cells. With a network,
 * each worker is taken to sit on its own machine (cores = workers unless cores= says otherwise),
 * and transports whose ranks were seen to run one after another are replaced by 'network': the
 * single node's measured compute, messages costing only the network's latency and bandwidth.
 * A wire= without a network keeps only the transports that have a wire (ws).
 */
export function whatIf(model: CostModel, cells: CellObservation[], w: WhatIf, ctx: WhatIfContext): WhatIfRow[] {
  const uniq = <T>(xs: T[]): T[] => [...new Set(xs)];
  const network = w.latencyMs !== null && w.bandwidthBitsPerS !== null ? { latencyMs: w.latencyMs, bandwidthBitsPerS: w.bandwidthBitsPerS } : null;
  let transports = w.transport ? [w.transport] : uniq(cells.filter((c) => !isBaseline(c) || cells.every(isBaseline)).map((c) => c.transport));
  let m = model;
  if (network !== null && !w.transport) {
    transports = transports.filter((t) => model.transports[t]?.concurrent !== false);
    if (transports.length === 0) {
      const base = model.transports[BASELINE_TRANSPORT]!;
      m = { ...model, transports: { ...model.transports, network: {
        ...base, transport: 'network', concurrent: true, coordPerRankMs: 0, coordPerByteMs: 0, handoffPerRankMs: 0, handoffPerByteMs: 0,
        bytesFixed: 0, bytesPerParam: 0, bytesPerExample: 0 } } };
      transports = ['network'];
    }
  }
  if (w.wire !== null && network === null) transports = transports.filter((t) => WIRE_TRANSPORTS.includes(t));
  const workers = w.workers ?? uniq(cells.map((c) => c.workers)).filter((n) => n > 1);
  const batches = w.batch ?? uniq(cells.map((c) => c.batch));
  const nets = w.sizes ? [netShape(w.sizes)] : uniq(cells.map((c) => netKey(c.net))).map((k) => cells.find((c) => netKey(c.net) === k)!.net);
  const averageEvery = w.averageEvery ?? 1;
  const rows: WhatIfRow[] = [];
  for (const net of nets) for (const batch of batches) for (const transport of transports) for (const W of workers.length ? workers : [2]) {
    const cores = w.cores ?? (network !== null ? Math.max(W, model.cores) : model.cores);
    const wire = network !== null || WIRE_TRANSPORTS.includes(transport) ? w.wire ?? 'fp32' : null;
    const cpu = w.cpu ?? 1;
    const prediction = predictStep(m, { transport, workers: W, batch, net, network, cores, averageEvery,
      wireElementBytes: WIRE_ELEMENT_BYTES[wire ?? 'fp32'], velocity: ctx.momentum, cpu });
    if (transport === 'network') prediction.assumptions.unshift('compute as measured on one node here; messages cost only the network');
    // one node: one such host
    const baselineMs = predictStep(m, { transport: BASELINE_TRANSPORT, workers: 1, batch, net, cpu }).stepMs;
    const epochSeconds = stepsPerEpoch(ctx.trainCount, batch) * prediction.stepMs / 1000;
    const toTarget = ctx.epochsToTarget?.(net, batch) ?? null;
    rows.push({
      transport, workers: W, batch, net, cores, network, averageEvery, wire, prediction, baselineMs, speedup: baselineMs / prediction.stepMs,
      samplesPerSecond: batch / (prediction.stepMs / 1000), epochSeconds,
      timeToAccuracy: toTarget === null ? null : { ...toTarget, seconds: toTarget.epochs * epochSeconds },
    });
  }
  return rows;
}
