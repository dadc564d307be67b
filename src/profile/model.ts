/**
 * The cost model: a step of W workers on a global batch B of a net with P parameters and M
 * multiply-adds per example takes
 *   T = F + W·(e₀ + e_b·bytes) + wire + compute + u₀ + u·P + [W > 1]·ρ·W·P
 *   wire    = (l₀ + l_b·bytes − σ) + W·σ (+ 2·latency + W·bytes·8/bandwidth over a what-if network)
 *   σ       = s₀ + s_b·bytes: the coordinator's own CPU time in one rank's round trip beyond its
 *             timed encode/decode (ws parsing frames, socket reads and writes), measured as the
 *             process's CPU time during the exchange of a one-worker cell. The coordinator is one
 *             thread: that part of the round trip adds up over the ranks while the rest (the
 *             worker's side, the wire, the wake-ups) overlaps. Without a measurement of it (a
 *             shared-memory transport, an old bench file) half of each byte's cost is taken as
 *             the coordinator's: wire = l₀ + l_b·bytes·(W+1)/2.
 *   compute = (k₀ + k_P·P + c·M·⌈B/W⌉) · max(1, W/usable)       ranks that run at the same time
 *           = W·(k₀ + k_P·P) + c·M·B                            ranks run one after another
 * with bytes = b₀ + b_P·P + b_n·⌈B/W⌉ per rank. Ranks that run at the same time add two terms
 * no one-worker run shows directly:
 *   contention: their compute is stretched by κ, measured by a probe that runs the net's own
 *     training step on one thread alone and on every core at once (shared caches, memory bandwidth);
 *   straggler wait: the step waits for the slowest of W round trips. Its median is the
 *     0.5^(1/W) quantile of one rank's round trip, read from the step-to-step jitter of the
 *     one-worker cell (W independent draws), so wait = (q_W − 1)·(compute + wire).
 * Every coefficient is fitted by non-negative
 * least squares from the measured cells, each on the part of the step it explains (worker
 * compute, coordinator per-message work, the untimed rest of the round trip, reduce, optimizer);
 * F is the mean of what is left. Usable parallelism is capped at the core count (on this 2-core
 * machine a third worker only shares the cores) and, lower still, at the cores the process could
 * really use at once when the bench ran (another job on the machine takes its share).
 */
import { nnls } from './least-squares.js';
import type { CellObservation, NetShape } from './observe.js';
import { fmtInt } from './format.js';

export interface TransportModel {
  transport: string;
  /** ranks ran at the same time in a measured multi-worker cell; null = not observed (assumed) */
  concurrent: boolean | null;
  computePerShardMs: number;
  computePerParamMs: number;
  /**
   * With a compute curve for every net this transport was measured on: its workers' compute of a
   * shard = this × the curve at that shard size (null: the line k₀ + k_P·P + c·M·shard instead)
   */
  computeCurveScale: number | null;
  /** ms per example per multiply-add of the forward pass (forward + backward together) */
  computePerMacMs: number;
  coordPerMessageMs: number;
  coordPerByteMs: number;
  /**
   * σ = serialPerMessageMs + serialPerByteMs·bytes: the coordinator's CPU time per rank and step
   * beyond its timed encode/decode, which adds up over the ranks (null: not measured)
   */
  serialPerMessageMs: number | null;
  serialPerByteMs: number;
  wirePerMessageMs: number;
  wirePerByteMs: number;
  bytesFixed: number;
  bytesPerParam: number;
  bytesPerExample: number;
  overheadMs: number;
  /** step-to-step jitter (sorted ratios to the neighbouring steps' median, observe.ts jitterSpread) of one rank's round trip, by shapeKey */
  spreads: Record<string, number[]>;
  /** cells the fit used, and the rms error of its step-time predictions on them */
  cells: number;
  rmsMs: number;
}

export interface CostModel {
  cores: number;
  /** cores this process could use at once when measured (≤ cores; calibrate.ts usableCores) */
  usableCores: number;
  optimizerFixedMs: number;
  optimizerPerParamMs: number;
  reducePerFloatMs: number;
  /** where ρ came from: multi-worker cells, or a calibration of the reduction kernel */
  reduceSource: 'measured' | 'calibrated' | 'none';
  /** κ by net (sizes joined with '-'): compute of ranks busy on every core at once ÷ compute alone (1 = no probe) */
  contention: Record<string, number>;
  /** by net key: ms of one shard's step on the coordinator's engine, by shard size (bench/harness/compute-curve.ts) */
  computeCurve: Record<string, Record<number, number>>;
  transports: Record<string, TransportModel>;
}

export interface NetworkWhatIf {
  /** one-way latency per message, ms */
  latencyMs: number;
  /** bits per second on the coordinator's link (shared by all ranks) */
  bandwidthBitsPerS: number;
}

export interface Scenario {
  transport: string;
  workers: number;
  batch: number;
  net: NetShape;
  network?: NetworkWhatIf | null;
  /** cores available to the workers (default: the model's) */
  cores?: number;
}

export interface Prediction {
  stepMs: number;
  computeMs: number;
  communicationMs: number;
  updateMs: number;
  overheadMs: number;
  bytesPerRank: number;
  /** factor by which more workers than usable cores stretch the compute (1 when W ≤ usable cores) */
  cpuSharing: number;
  /** κ applied to the compute of ranks running at the same time (1 for one rank) */
  contention: number;
  /** median wait for the slowest of the W ranks beyond a typical one (part of stepMs) */
  waitMs: number;
  /** what the prediction assumed that no measurement showed */
  assumptions: string[];
}

export interface FitOptions {
  cores: number;
  /** measured usable cores (default: cores) */
  usableCores?: number;
  /** ms to add one float into another on the coordinator, measured by the caller (used when no multi-worker cell is fitted) */
  reducePerFloatMs?: number;
  /** cells whose timestamps show whether a transport's ranks overlap (not fitted, only looked at) */
  concurrencyEvidence?: CellObservation[];
  /** κ by net key, from the contention probe (calibrate.ts computeContention) */
  contention?: Record<string, number>;
  /** by net key, the compute curve (bench/harness/compute-curve.ts) */
  computeCurve?: Record<string, Record<number, number>>;
}

/** A cell counts as concurrent when its ranks were busy at the same time for at least this many rank-equivalents. */
const CONCURRENT_AT = 1.2;

export function fitCostModel(cells: CellObservation[], o: FitOptions): CostModel {
  if (cells.length === 0) throw new RangeError('the cost model needs at least one measured cell');
  const multi = cells.filter((c) => c.workers > 1);
  const reduceFit = nnls(multi.map((c) => [c.workers * c.net.params]), multi.map((c) => c.reduceMs));
  const opt = nnls(cells.map((c) => [1, c.net.params]), cells.map((c) => c.optimizerMs));
  const model: CostModel = {
    cores: o.cores,
    usableCores: Math.min(o.cores, o.usableCores ?? o.cores),
    optimizerFixedMs: opt.coef[0]!, optimizerPerParamMs: opt.coef[1]!,
    reducePerFloatMs: multi.length > 0 ? reduceFit.coef[0]! : o.reducePerFloatMs ?? 0,
    reduceSource: multi.length > 0 ? 'measured' : o.reducePerFloatMs !== undefined ? 'calibrated' : 'none',
    contention: { ...o.contention },
    computeCurve: { ...o.computeCurve },
    transports: {},
  };
  const evidence = [...cells, ...(o.concurrencyEvidence ?? [])];
  for (const transport of [...new Set(cells.map((c) => c.transport))]) {
    const own = cells.filter((c) => c.transport === transport);
    const seen = evidence.filter((c) => c.transport === transport && c.workers > 1);
    const concurrent = seen.length === 0 ? null : seen.some((c) => c.concurrency >= CONCURRENT_AT);
    model.transports[transport] = fitTransport(transport, own, cells, concurrent, model);
  }
  return model;
}

function fitTransport(transport: string, own: CellObservation[], all: CellObservation[], concurrent: boolean | null, model: CostModel): TransportModel {
  // worker compute, with the CPU sharing of ranks that ran at the same time taken out (it is
  // modelled, not fitted): what one rank's shard costs on a core of its own
  const computeCells = own.length > 0 ? own : all;
  const rows = (cs: CellObservation[]) => cs.flatMap((c) => c.ranks.map((r) => ({ c, r })));
  const stretch = (c: CellObservation): number => (c.workers > 1 && c.concurrency >= CONCURRENT_AT
    ? sharingOf(model, c.net, c.workers) * contentionOf(model, c.net, c.workers) : 1);
  const cr = rows(computeCells);
  const compute = nnls(cr.map(({ c, r }) => [1, c.net.params, c.net.macs * r.shard]), cr.map(({ c, r }) => r.computeMs / stretch(c)), true);
  // with a curve for every row's net: one factor, the shape from the probe
  const curved = cr.length > 0 && cr.every(({ c, r }) => curveAt(model, c.net, r.shard) !== null)
    ? nnls(cr.map(({ c, r }) => [curveAt(model, c.net, r.shard)!]), cr.map(({ c, r }) => r.computeMs / stretch(c)), true).coef[0]!
    : null;
  const mr = rows(own);
  const coord = nnls(mr.map(({ r }) => [1, r.bytes]), mr.map(({ r }) => r.coordMs));
  const wire = nnls(mr.map(({ r }) => [1, r.bytes]), mr.map(({ r }) => r.wireMs));
  const bytes = nnls(mr.map(({ c, r }) => [1, c.net.params, r.shard]), mr.map(({ r }) => r.bytes));
  // σ per rank: the coordinator's CPU in the exchange, less the encode/decode counted above
  const sc = own.filter((c) => Number.isFinite(c.coordCpuMs) && c.ranks.length > 0);
  const serialOf = (c: CellObservation) => Math.max(0, c.coordCpuMs / c.workers - c.ranks.reduce((a, r) => a + r.coordMs, 0) / c.ranks.length);
  const serial = sc.length > 0 ? nnls(sc.map((c) => [1, c.ranks.reduce((a, r) => a + r.bytes, 0) / c.ranks.length]), sc.map(serialOf)) : null;
  const tm: TransportModel = {
    transport, concurrent,
    computePerShardMs: compute.coef[0]!, computePerParamMs: compute.coef[1]!, computePerMacMs: compute.coef[2]!, computeCurveScale: curved,
    coordPerMessageMs: coord.coef[0]!, coordPerByteMs: coord.coef[1]!,
    serialPerMessageMs: serial === null ? null : serial.coef[0]!, serialPerByteMs: serial === null ? 0 : serial.coef[1]!,
    wirePerMessageMs: wire.coef[0]!, wirePerByteMs: wire.coef[1]!,
    bytesFixed: bytes.coef[0]!, bytesPerParam: bytes.coef[1]!, bytesPerExample: bytes.coef[2]!,
    overheadMs: 0, spreads: spreadsOf(own), cells: own.length, rmsMs: NaN,
  };
  const scenario = (c: CellObservation): Scenario => ({ transport, workers: c.workers, batch: c.batch, net: c.net });
  // F: what the fitted parts leave of the measured step (cutting the batch, publishing, returning),
  // a constant fitted on relative errors like the rest, so a 300 ms cell's noise does not swamp
  // the small cells where F matters: F = Σ r/y² / Σ 1/y²
  let num = 0;
  let den = 0;
  for (const c of own) {
    const w = 1 / Math.max(c.stepMs, 1e-6) ** 2;
    num += w * (c.stepMs - predictWith(model, tm, scenario(c)).stepMs);
    den += w;
  }
  tm.overheadMs = Math.max(0, num / den);
  tm.rmsMs = Math.sqrt(own.reduce((a, c) => a + (predictWith(model, tm, scenario(c)).stepMs - c.stepMs) ** 2, 0) / own.length);
  return tm;
}

/** Predicted step time of a scenario; throws when the model has no fit for the transport. */
export function predictStep(model: CostModel, s: Scenario): Prediction {
  const tm = model.transports[s.transport];
  if (tm === undefined) throw new RangeError(`the cost model has no measurements of transport '${s.transport}'; measured: ${Object.keys(model.transports).join(', ')}`);
  return predictWith(model, tm, s);
}

function predictWith(model: CostModel, tm: TransportModel, s: Scenario): Prediction {
  const W = s.workers;
  const P = s.net.params;
  const cores = s.cores ?? model.usableCores;
  const shard = Math.ceil(s.batch / W);
  const assumptions: string[] = [];
  let bytes = Math.max(0, tm.bytesFixed + tm.bytesPerParam * P + tm.bytesPerExample * shard);
  const parallel = tm.concurrent !== false;
  if (tm.concurrent === null && W > 1) assumptions.push(`${tm.transport} ranks run at the same time (no multi-worker run of it was measured)`);
  let computeMs: number;
  let cpuSharing = 1;
  let contention = 1;
  const curve = tm.computeCurveScale === null ? null : curveAt(model, s.net, shard);
  if (parallel) {
    cpuSharing = sharingOf(model, s.net, W, s.cores);
    contention = contentionOf(model, s.net, W);
    const one = curve !== null ? tm.computeCurveScale! * curve : tm.computePerShardMs + tm.computePerParamMs * P + tm.computePerMacMs * s.net.macs * shard;
    computeMs = one * cpuSharing * contention;
  } else {
    computeMs = curve !== null
      ? W * tm.computeCurveScale! * curve
      : W * (tm.computePerShardMs + tm.computePerParamMs * P) + tm.computePerMacMs * s.net.macs * s.batch;
  }
  let wireMs: number;
  const roundTrip = tm.wirePerMessageMs + tm.wirePerByteMs * bytes;
  if (!parallel) wireMs = W * roundTrip;
  else if (tm.serialPerMessageMs !== null) {
    // the coordinator's share (σ, measured) adds up over the ranks; the rest overlaps
    const serial = Math.min(roundTrip, Math.max(0, tm.serialPerMessageMs + tm.serialPerByteMs * bytes));
    wireMs = roundTrip - serial + W * serial;
  } else {
    // not measured: each byte is handled once by the coordinator (serial over the ranks) and once
    // by its worker (in parallel): the per-byte cost grows as (W + 1) / 2, the per-message latency not
    wireMs = tm.wirePerMessageMs + tm.wirePerByteMs * bytes * (W + 1) / 2;
  }
  if (s.network) {
    if (bytes === 0) {
      // a shared-memory transport moved nothing; over a network it would move parameters out,
      // gradient sums back and the shard's indices
      bytes = 8 * P + 4 * shard + 64;
      assumptions.push(`${fmtInt(bytes)} bytes per rank over the network (parameters out, gradient sums back, indices)`);
    }
    wireMs += 2 * s.network.latencyMs + (W * bytes * 8) / s.network.bandwidthBitsPerS * 1000;
  }
  // the step waits for the slowest rank: with W independent round trips its median is the
  // 0.5^(1/W) quantile of one rank's spread (W = 2: the 71st percentile)
  let waitMs = 0;
  if (parallel && W > 1) {
    const p = 0.5 ** (1 / W);
    const own = tm.spreads[shapeKey(s.net, s.batch)];
    // a shape not measured: the mean of the measured shapes' quantiles
    const all = Object.values(tm.spreads);
    const q = own !== undefined ? quantile(own, p) : all.length > 0 ? all.reduce((a, sp) => a + quantile(sp, p), 0) / all.length : NaN;
    if (Number.isNaN(q)) assumptions.push('no straggler wait (no step-to-step spread of one rank was measured)');
    else waitMs = Math.max(0, q - 1) * (computeMs + wireMs);
  }
  // workers that are processes of their own (σ measured: the coordinator's CPU is apart from
  // theirs) with the coordinator need W + 1 cores; with fewer, the OS time-slices them and no
  // one-worker run shows what that costs (on this 2-core VM, ws x2 at 784-256-256-10: ~2 ms
  // per step, bench/ws-sharing.ts; docs/profiling.md "Limits"). The machine's cores count here,
  // not the usable ones: another job's share is not what this is about.
  const machineCores = s.cores ?? model.cores;
  if (W > 1 && tm.serialPerMessageMs !== null && !s.network && W + 1 > machineCores) {
    assumptions.push(`${W} worker processes and the coordinator share ${machineCores} cores: what the OS scheduling of ${W + 1} processes on ${machineCores} cores costs is not in the model (no one-worker run shows it)`);
  }
  const coordMs = W * (tm.coordPerMessageMs + tm.coordPerByteMs * bytes);
  const updateMs = model.optimizerFixedMs + model.optimizerPerParamMs * P + (W > 1 ? model.reducePerFloatMs * W * P : 0);
  if (W > 1 && model.reduceSource === 'none') assumptions.push('no cost for adding the workers\' gradients (not measured)');
  const communicationMs = wireMs + coordMs;
  return {
    stepMs: tm.overheadMs + computeMs + communicationMs + updateMs + waitMs,
    computeMs, communicationMs, updateMs, overheadMs: tm.overheadMs, bytesPerRank: bytes, cpuSharing, contention, waitMs, assumptions,
  };
}

/**
 * The compute curve of `net` at `shard` examples: measured, or linear between the two nearest
 * measured sizes; null outside the measured range or without a curve (the fitted line is used).
 */
export function curveAt(model: Pick<CostModel, 'computeCurve'>, net: NetShape, shard: number): number | null {
  const c = model.computeCurve?.[net.sizes.join('-')];
  if (c === undefined) return null;
  const sizes = Object.keys(c).map(Number).sort((a, b) => a - b);
  if (sizes.length === 0 || shard < sizes[0]! || shard > sizes.at(-1)!) return null;
  let i = 0;
  while (i < sizes.length - 1 && sizes[i + 1]! < shard) i++;
  const a = sizes[i]!;
  if (a === shard || i === sizes.length - 1) return c[a]!;
  const b = sizes[i + 1]!;
  return c[a]! + (c[b]! - c[a]!) * (shard - a) / (b - a);
}

/** Key of a (net, global batch) pair in TransportModel.spreads. */
export const shapeKey = (net: NetShape, batch: number): string => `${net.sizes.join('-')}@${batch}`;

/**
 * More ranks than cores take turns: W / cores. Without a probe the cores are the usable ones
 * (another job's share stretches the compute too); with one, κ already measured that share
 * along with the contention, so only the machine's own cores count here.
 */
function sharingOf(model: CostModel, net: NetShape, W: number, cores?: number): number {
  const probed = model.contention[net.sizes.join('-')] !== undefined;
  return Math.max(1, W / (cores ?? (probed ? model.cores : model.usableCores)));
}

/** κ for W ranks at once: the probe measured all cores busy; fewer ranks than cores interpolate toward 1. */
function contentionOf(model: CostModel, net: NetShape, W: number): number {
  const k = model.contention[net.sizes.join('-')];
  if (k === undefined || W <= 1 || model.cores <= 1) return 1;
  const busy = Math.min(W, model.cores);
  return 1 + (Math.max(1, k) - 1) * (busy - 1) / (model.cores - 1);
}

/** The one-worker cells' spreads by shape. */
function spreadsOf(cells: CellObservation[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const c of cells) if (c.workers === 1 && c.spread.length > 0) out[shapeKey(c.net, c.batch)] = c.spread;
  return out;
}

/** Linear-interpolated quantile p (0..1) of ascending values. */
function quantile(sorted: number[], p: number): number {
  const x = p * (sorted.length - 1);
  const i = Math.floor(x);
  const j = Math.min(sorted.length - 1, i + 1);
  return sorted[i]! + (sorted[j]! - sorted[i]!) * (x - i);
}

