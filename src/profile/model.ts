/**
 * The cost model: a step of W workers on a global batch B of a net with P parameters takes
 *   T = F + W·(e₀ + e_b·bytes) + handoff + compute + u₀ + u·P + [W > 1]·ρ·W·P
 *   handoff = (l₀ + l_b·bytes) + (W − 1)·σ                  ranks that run at the same time
 *           = W·(l₀ + l_b·bytes)                            ranks run one after another
 *             (+ 2·latency + W·bytes·8/bandwidth over a what-if network)
 *   σ       = s₀ + s_b·bytes: the coordinator's own CPU time in one rank's round trip beyond its
 *             timed encode/decode (ws parsing frames, socket reads and writes), measured as the
 *             process's CPU time during the exchange of a one-worker cell; 0 where not measured
 *             (threads: no bytes, nothing of the round trip is the coordinator's alone). The
 *             coordinator is one thread: that part adds up over the ranks while the rest of the
 *             round trip (the worker's side, the network or the shared-memory signal, the wake-ups) overlaps.
 *   The handoff is the untimed rest of a rank's round trip (the HANDOFF phase); for threads
 *   nothing crosses a wire and bytes are 0, so only l₀ (signalling and wake-up) remains.
 *   compute = f · L(k, n) · max(1, W/cores), k = min(W, cores)   ranks that run at the same time
 *           = f · W · L(1, n)                                     ranks run one after another
 * with shard n = ⌈B/W⌉ and bytes = b₀ + b_P·P + b_n·n per rank. L(k, n) is the lockstep probe
 * (bench/harness/lockstep.ts): ms per step of k ranks each computing an n-example shard at once
 * on this machine, each waiting for the others after every step, nothing exchanged. It holds what
 * no one-worker run shows — ranks at once slowing each other, waiting for the slower one, another
 * job's share of the cores — measured directly rather than built up from separate terms. f, one
 * factor per transport, is its workers' compute against the probe's (fitted on the cells). Every
 * coefficient is fitted by non-negative least squares from the measured cells, each on the part
 * of the step it explains (worker compute, coordinator per-rank work, the untimed rest of the
 * round trip, reduce, optimizer); F is the mean of what is left.
 *
 * Settings no measured cell ran with enter as factors on these terms, with no constant of their own:
 * - local SGD, one exchange per K steps: the exchange (the W·e and handoff terms, the network's)
 *   and the coordinator's reduce and averaging (priced as an optimizer step, u₀ + u·P) happen once
 *   per round, so per step they are divided by K; each rank adds its own optimizer step per step
 *   (u₀ + u·P, spread over the cores like its compute). With momentum each rank's velocity (P
 *   floats, fp32) travels with the parameters and back, and the coordinator reduces and averages it
 *   too. F stays per step. K = 1 is the formula above, bit for bit.
 * - a 16-bit wire format: the parameter and gradient bytes (b_P·P) are halved wherever bytes cross
 *   the wire (the handoff, σ, the network); the coordinator's timed encode/decode stays priced per
 *   element, at the fp32 bytes, because converting a float is no cheaper than copying it.
 */
import { nnls } from './least-squares.js';
import type { CellObservation, NetShape } from './observe.js';
import { fmtInt, fmtX } from './format.js';

/** ms per step by ranks at once, then by shard size: table[k][n] = L(k, n). */
export type LockstepTable = Record<number, Record<number, number>>;

export interface TransportModel {
  transport: string;
  /** ranks ran at the same time in a measured multi-worker cell; null = not observed (assumed) */
  concurrent: boolean | null;
  /** f: its workers' compute of a shard ÷ the lockstep probe's at the same ranks and shard */
  computeFactor: number;
  coordPerRankMs: number;
  coordPerByteMs: number;
  /**
   * σ = serialPerRankMs + serialPerByteMs·bytes: the coordinator's CPU time per rank and step
   * beyond its timed encode/decode, which adds up over the ranks (null: not measured)
   */
  serialPerRankMs: number | null;
  serialPerByteMs: number;
  handoffPerRankMs: number;
  handoffPerByteMs: number;
  bytesFixed: number;
  bytesPerParam: number;
  bytesPerExample: number;
  overheadMs: number;
  /** cells the fit used, and the rms error of its step-time predictions on them */
  cells: number;
  rmsMs: number;
}

export interface CostModel {
  cores: number;
  optimizerFixedMs: number;
  optimizerPerParamMs: number;
  reducePerFloatMs: number;
  /** where ρ came from: multi-worker cells, or a calibration of the reduction kernel */
  reduceSource: 'measured' | 'calibrated' | 'none';
  /** by net key (sizes joined with '-'): the lockstep probe */
  lockstep: Record<string, LockstepTable>;
  transports: Record<string, TransportModel>;
  /** transports whose workers each had a host of their own (dpt bench --emulate: ws); absent: none */
  hostPerWorker?: string[];
  /** ws: the coordinator computes no rank (--average-only); absent or false: it computes rank 0 of two or more */
  averageOnly?: boolean;
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
  /** each worker on a machine of its own, across this network */
  network?: NetworkWhatIf | null;
  /** cores available to the workers (default: the model's) */
  cores?: number;
  /** local SGD: steps per exchange (default 1: every step, as measured) */
  averageEvery?: number;
  /** bytes of one parameter or gradient element on the wire: 4 (fp32, as measured; the default) or 2 (fp16, bf16) */
  wireElementBytes?: number;
  /** momentum is on: with averageEvery > 1 each rank's velocity travels too */
  velocity?: boolean;
  /**
   * each host's CPU as a fraction of this machine's core (default 1): every part of the step that
   * is CPU time (compute, encode/decode, the round trip's own work, the update, F) takes 1/cpu as
   * long; the network's wire time does not change
   */
  cpu?: number;
}

/** All per step: with local SGD, a round's exchange, reduce and averaging ÷ K. */
export interface Prediction {
  stepMs: number;
  computeMs: number;
  communicationMs: number;
  /** the coordinator's reduce and optimizer step (or averaging), plus the ranks' own local updates */
  updateMs: number;
  /** the part of updateMs the ranks spend on their own optimizer steps (0 unless averageEvery > 1) */
  localUpdateMs: number;
  overheadMs: number;
  /** bytes on the wire per rank and step: one exchange's ÷ K */
  bytesPerRank: number;
  /** k: ranks computing at once, as the lockstep probe measured them (1 for ranks taking turns) */
  ranksAtOnce: number;
  /** factor by which more workers than cores stretch the compute (1 when W ≤ cores) */
  cpuSharing: number;
  /** what the prediction assumed that no measurement showed */
  assumptions: string[];
}

export interface FitOptions {
  cores: number;
  /** by net key, the lockstep probe: every net the model is fitted on or asked about */
  lockstep: Record<string, LockstepTable>;
  /** ms to add one float into another on the coordinator, measured by the caller (used when no multi-worker cell is fitted) */
  reducePerFloatMs?: number;
  /** cells whose timestamps show whether a transport's ranks overlap (not fitted, only looked at) */
  concurrencyEvidence?: CellObservation[];
  /**
   * transports whose workers each ran on an emulated host of their own (dpt bench --emulate: ws):
   * their ranks compute alone on their hosts, the probe's one rank, however many there are
   */
  hostPerWorker?: readonly string[];
  /** ws measured with --average-only: every rank a worker process */
  averageOnly?: boolean;
}

/** A cell counts as concurrent when its ranks were busy at the same time for at least this many rank-equivalents. */
const CONCURRENT_AT = 1.2;

export function fitCostModel(cells: CellObservation[], o: FitOptions): CostModel {
  if (cells.length === 0) throw new RangeError('the cost model needs at least one measured configuration');
  const multi = cells.filter((c) => c.workers > 1);
  const reduceFit = nnls(multi.map((c) => [c.workers * c.net.params]), multi.map((c) => c.reduceMs));
  const opt = nnls(cells.map((c) => [1, c.net.params]), cells.map((c) => c.optimizerMs));
  const model: CostModel = {
    cores: o.cores,
    optimizerFixedMs: opt.coef[0]!, optimizerPerParamMs: opt.coef[1]!,
    reducePerFloatMs: multi.length > 0 ? reduceFit.coef[0]! : o.reducePerFloatMs ?? 0,
    reduceSource: multi.length > 0 ? 'measured' : o.reducePerFloatMs !== undefined ? 'calibrated' : 'none',
    lockstep: { ...o.lockstep },
    transports: {},
    hostPerWorker: [...(o.hostPerWorker ?? [])],
    ...(o.averageOnly ? { averageOnly: true } : {}),
  };
  const evidence = [...cells, ...(o.concurrencyEvidence ?? [])];
  for (const transport of [...new Set(cells.map((c) => c.transport))]) {
    const own = cells.filter((c) => c.transport === transport);
    const seen = evidence.filter((c) => c.transport === transport && c.workers > 1);
    const concurrent = seen.length === 0 ? null : seen.some((c) => c.concurrency >= CONCURRENT_AT);
    model.transports[transport] = fitTransport(transport, own, concurrent, model);
  }
  return model;
}

function fitTransport(transport: string, own: CellObservation[], concurrent: boolean | null, model: CostModel): TransportModel {
  const parallel = concurrent !== false;
  const scenario = (c: CellObservation): Scenario => ({ transport, workers: c.workers, batch: c.batch, net: c.net });
  // f on relative errors, so a 300 ms cell does not swamp a 1 ms one: the step's compute is the
  // slowest rank's where ranks overlap, the sum of them where they take turns
  const stepCompute = (c: CellObservation): number => (parallel ? Math.max(...c.ranks.map((r) => r.computeMs)) : c.ranks.reduce((a, r) => a + r.computeMs, 0));
  const factor = nnls(own.map((c) => [computeBasis(model, parallel, scenario(c)).ms]), own.map(stepCompute), true);
  // the per-rank exchange terms from the ranks that crossed the wire: over ws a rank the coordinator
  // computes itself (rank 0, bytes 0) has no round trip, and would pull every term towards none
  const allRows = own.flatMap((c) => c.ranks.map((r) => ({ c, r })));
  const rows = allRows.some(({ r }) => r.bytes > 0) ? allRows.filter(({ r }) => r.bytes > 0) : allRows;
  const coord = nnls(rows.map(({ r }) => [1, r.bytes]), rows.map(({ r }) => r.coordMs));
  const handoff = nnls(rows.map(({ r }) => [1, r.bytes]), rows.map(({ r }) => r.handoffMs));
  const bytes = nnls(rows.map(({ c, r }) => [1, c.net.params, r.shard]), rows.map(({ r }) => r.bytes));
  // σ per rank: the coordinator's CPU in the exchange, less the encode/decode counted above
  const sc = own.filter((c) => Number.isFinite(c.coordCpuMs) && c.ranks.length > 0);
  const serialOf = (c: CellObservation) => Math.max(0, c.coordCpuMs / c.workers - c.ranks.reduce((a, r) => a + r.coordMs, 0) / c.ranks.length);
  const serial = sc.length > 0 ? nnls(sc.map((c) => [1, c.ranks.reduce((a, r) => a + r.bytes, 0) / c.ranks.length]), sc.map(serialOf)) : null;
  const tm: TransportModel = {
    transport, concurrent, computeFactor: factor.coef[0]!,
    coordPerRankMs: coord.coef[0]!, coordPerByteMs: coord.coef[1]!,
    serialPerRankMs: serial === null ? null : serial.coef[0]!, serialPerByteMs: serial === null ? 0 : serial.coef[1]!,
    handoffPerRankMs: handoff.coef[0]!, handoffPerByteMs: handoff.coef[1]!,
    bytesFixed: bytes.coef[0]!, bytesPerParam: bytes.coef[1]!, bytesPerExample: bytes.coef[2]!,
    overheadMs: 0, cells: own.length, rmsMs: NaN,
  };
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
  const K = s.averageEvery ?? 1;
  const wireElement = s.wireElementBytes ?? 4;
  const shard = Math.ceil(s.batch / W);
  const assumptions: string[] = [];
  // one exchange, per rank: the fitted bytes are fp32 (b_P·P: parameters out, gradient sums back);
  // on a 16-bit wire that part is halved, headers and the shard's indices are not
  const tensorBytes = tm.bytesPerParam * P;
  let elementBytes = Math.max(0, tm.bytesFixed + tensorBytes + tm.bytesPerExample * shard);
  let bytes = Math.max(0, tm.bytesFixed + tensorBytes * (wireElement / 4) + tm.bytesPerExample * shard);
  const parallel = tm.concurrent !== false;
  if (tm.concurrent === null && W > 1) assumptions.push(`${tm.transport} ranks run at the same time (no multi-worker run of it was measured)`);
  const basis = computeBasis(model, parallel, s);
  const computeMs = tm.computeFactor * basis.ms;
  // with local SGD and momentum, each rank's velocity travels too, fp32 whatever the wire: out with
  // the parameters, back with the delta
  const velocity = K > 1 && s.velocity === true;
  const velocityBytes = velocity ? 8 * P : 0;
  if (bytes > 0) {
    bytes += velocityBytes;
    elementBytes += velocityBytes;
  }
  // the ranks that cross the wire: over ws the coordinator computes rank 0 itself (unless it only
  // averages), and its rank has no exchange
  const remote = s.transport === 'ws' && W >= 2 && !model.averageOnly ? W - 1 : W;
  const roundTrip = tm.handoffPerRankMs + tm.handoffPerByteMs * bytes;
  // the coordinator's share (σ, measured) adds up over the ranks; the rest overlaps
  const serial = tm.serialPerRankMs === null ? 0 : Math.min(roundTrip, Math.max(0, tm.serialPerRankMs + tm.serialPerByteMs * bytes));
  let handoffMs = parallel ? roundTrip + (remote - 1) * serial : remote * roundTrip;
  // on emulated hosts every worker's bytes cross the coordinator's one link, one after another:
  // the per-byte part of a round trip (measured with one worker) adds up over the remote ranks
  if (hasHostPerWorker(model, s.transport) && parallel) handoffMs += (remote - 1) * Math.max(0, tm.handoffPerByteMs * bytes - serial);
  // a slower host: every CPU part stretches (below), the network's wire time does not
  const slow = 1 / (s.cpu ?? 1);
  let networkMs = 0;
  if (s.network) {
    if (bytes === 0) {
      // a shared-memory transport moved nothing; over a network it would move parameters out,
      // gradient sums back and the shard's indices (its measured handoff, the signalling, stays)
      elementBytes = 8 * P + 4 * shard + 64 + velocityBytes;
      bytes = 2 * wireElement * P + 4 * shard + 64 + velocityBytes;
      assumptions.push(`${fmtInt(bytes)} bytes per rank over the network (parameters out, gradient sums back, indices${velocity ? ', velocity' : ''})`);
    }
    // the bytes stream: the measured round trip's per-byte part (copying them through the local
    // kernel, ×1/cpu) and their time on the wire overlap, and the slower of the two sets the pace;
    // adding both counted each byte twice (the 1 Gbit/s what-if from loopback, 784-256-256-10 at
    // batch 128: 26 ms per step predicted against 19.6 measured on emulated hosts)
    const wireMs = (remote * bytes * 8) / s.network.bandwidthBitsPerS * 1000;
    networkMs = 2 * s.network.latencyMs + Math.max(0, wireMs - tm.handoffPerByteMs * bytes * slow);
  }
  if (wireElement < 4 && bytes > 0) assumptions.push('16-bit conversion priced as fp32 encode/decode per element (not measured)');
  // workers that are processes of their own (σ measured: the coordinator's CPU is apart from
  // theirs) with the coordinator need W + 1 cores; with fewer, the OS time-slices them and no
  // one-worker run shows what that costs (on a 2-core VM, ws x2 at 784-256-256-10: ~2 ms per
  // step, bench/ws-sharing.ts; docs/profiling.md "Limits")
  const machineCores = s.cores ?? model.cores;
  if (W > 1 && tm.serialPerRankMs !== null && !s.network && !hasHostPerWorker(model, s.transport) && W + 1 > machineCores) {
    assumptions.push(`${W} worker processes and the coordinator share ${machineCores} cores: what the OS scheduling of ${W + 1} processes on ${machineCores} cores costs is not in the model (no one-worker run shows it)`);
  }
  const coordMs = remote * (tm.coordPerRankMs + tm.coordPerByteMs * elementBytes);
  const optimizerMs = model.optimizerFixedMs + model.optimizerPerParamMs * P;
  // the coordinator reduces and steps (or averages) once per exchange: the delta, and the velocity
  const tensors = velocity ? 2 : 1;
  const roundUpdateMs = tensors * optimizerMs + (W > 1 ? tensors * model.reducePerFloatMs * W * P : 0);
  if (W > 1 && model.reduceSource === 'none') assumptions.push('no cost for adding the workers\' gradients (not measured)');
  // local SGD: every rank steps its own copy every step, on the cores its compute runs on
  const localUpdateMs = K > 1 ? optimizerMs * (parallel ? basis.sharing : W) : 0;
  if (K > 1) assumptions.push('each rank\'s local update priced as the measured optimizer step');
  if (slow !== 1) assumptions.push(`every CPU part of the step ${fmtX(slow)} as long on hosts of ${s.cpu} of this machine's cores`);
  const communicationMs = ((handoffMs + coordMs) * slow + networkMs) / K;
  const updateMs = (roundUpdateMs / K + localUpdateMs) * slow;
  const overheadMs = tm.overheadMs * slow;
  return {
    stepMs: overheadMs + computeMs * slow + communicationMs + updateMs,
    computeMs: computeMs * slow, communicationMs, updateMs, localUpdateMs: localUpdateMs * slow, overheadMs, bytesPerRank: bytes / K,
    ranksAtOnce: basis.ranks, cpuSharing: basis.sharing, assumptions,
  };
}

/** Whether the transport's workers each had an emulated host of their own, whose cap no other rank shares. */
export function hasHostPerWorker(model: Pick<CostModel, 'hostPerWorker'>, transport: string): boolean {
  return model.hostPerWorker?.includes(transport) ?? false;
}

/**
 * The step's compute before the transport's factor: the lockstep probe at the ranks that run at
 * once. Over a network each worker has a machine of its own (k = 1); more workers than cores
 * take turns on them (× W / cores); ranks that run one after another each compute alone. On
 * emulated hosts of their own, each rank computes alone on its host, as the probe's one rank does
 * on the coordinator's (the bench ran there, under the same cap).
 */
function computeBasis(model: CostModel, parallel: boolean, s: Scenario): { ms: number; ranks: number; sharing: number } {
  const W = s.workers;
  const shard = Math.ceil(s.batch / W);
  if (!parallel) return { ms: W * lockstepMs(model, s.net, 1, shard), ranks: 1, sharing: 1 };
  if (hasHostPerWorker(model, s.transport) && !s.network) return { ms: lockstepMs(model, s.net, 1, shard), ranks: 1, sharing: 1 };
  const cores = s.cores ?? model.cores;
  const ranks = s.network ? 1 : Math.max(1, Math.min(W, cores, model.cores));
  const sharing = Math.max(1, W / cores);
  return { ms: lockstepMs(model, s.net, ranks, shard) * sharing, ranks, sharing };
}

/**
 * L(k, n): the lockstep probe of `net` with k ranks at once on n-example shards. Between probed
 * sizes linear; beyond them the nearest two sizes' line (one probed size: proportional to n).
 */
export function lockstepMs(model: Pick<CostModel, 'lockstep'>, net: NetShape, ranks: number, shard: number): number {
  const key = net.sizes.join('-');
  const bySize = model.lockstep[key]?.[ranks];
  if (bySize === undefined || Object.keys(bySize).length === 0) {
    throw new RangeError(`the cost model has no lockstep probe of ${key} with ${ranks} rank(s) at once: dpt bench probes every net, batch and worker count it runs or a --what-if names`);
  }
  const sizes = Object.keys(bySize).map(Number).sort((a, b) => a - b);
  if (sizes.length === 1) return bySize[sizes[0]!]! * shard / sizes[0]!;
  let i = 0;
  while (i < sizes.length - 2 && sizes[i + 1]! < shard) i++;
  const a = sizes[i]!;
  const b = sizes[i + 1]!;
  return Math.max(0, bySize[a]! + (bySize[b]! - bySize[a]!) * (shard - a) / (b - a));
}

