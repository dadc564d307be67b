/**
 * Local SGD (periodic parameter averaging): every rank steps its own copy of the parameters on
 * its shard of each global batch, and every K steps the coordinator averages the copies,
 * weighted by the examples each rank saw since the last average (Lin et al., "Don't Use Large
 * Mini-Batches, Use Local SGD"; PyTorch's PeriodicModelAverager; Deeplearning4j's parameter
 * averaging). A rank steps with η on the MEAN gradient of its shard, so after the weighted
 * average every example has carried η/B as on one node: with K = 1 and plain SGD the average
 * is exactly the single-node step.
 *
 * What crosses from a rank to the coordinator is its weighted parameter delta n_r·(p₀ − p_r),
 * a sum like a gradient sum: the coordinator adds them in rank order as it adds gradients and
 * moves the parameters by −Σ/N (N = the round's examples), which is Σ (n_r/N)·p_r. Being small
 * numbers, deltas also survive the 16-bit wire formats where parameters would not.
 */
import { shardRange } from '../data/batches.js';

export interface LocalSgdPlan {
  /** K: steps between two averagings of the ranks' parameters (1 = per-step gradient averaging) */
  every: number;
  /** per-step averaging for the first E epochs, then every K (post-local SGD) */
  afterEpochs: number;
  /** average the ranks' momentum buffers too; otherwise each rank keeps its own */
  averageOptimizerState: boolean;
}

/**
 * One round of local SGD as a rank sees it. The request's indices hold the round's global
 * batches one after another; rank r's shard of step j is shardRange(batches[j], r, world) of
 * batch j.
 */
export interface LocalRound {
  /** the global batch size of each step of the round */
  batches: number[];
  /** η of each step (a learning-rate schedule may change it within the round) */
  etas: number[];
  /** the optimizer's settings besides η, the same on every rank */
  momentum: number;
  weightDecay: number;
  trainSize: number;
  /** with momentum: rank r's velocity at the start of the round (several ranks may share one); else null */
  velocities: Float32Array[] | null;
}

/** The round's examples in all: Σ batches. */
export function roundExamples(round: Pick<LocalRound, 'batches'>): number {
  let n = 0;
  for (const b of round.batches) n += b;
  return n;
}

/** n_r: the examples rank r steps on in a round of these global batches (Σ of its shards). */
export function rankExamples(batches: readonly number[], rank: number, world: number): number {
  let n = 0;
  for (const b of batches) {
    const [s, e] = shardRange(b, rank, world);
    n += e - s;
  }
  return n;
}

/**
 * Rank r's shard of every step of a round, one after another, into `out` (which must hold
 * rankExamples of them); `indices` are the round's global batches one after another.
 */
export function gatherRankIndices(out: Uint32Array, indices: Uint32Array, batches: readonly number[], rank: number, world: number): Uint32Array {
  let at = 0;
  let offset = 0;
  for (const b of batches) {
    const [s, e] = shardRange(b, rank, world);
    out.set(indices.subarray(offset + s, offset + e), at);
    at += e - s;
    offset += b;
  }
  return out.subarray(0, at);
}

/**
 * The weighted average from the rank-order sum of the ranks' weighted deltas:
 * params ← params − deltaSum / examples.
 */
export function applyAveragedDelta(params: Float32Array, deltaSum: Float32Array, examples: number): void {
  if (!(examples > 0)) throw new RangeError(`an average needs at least one example, got ${examples}`);
  const inv = 1 / examples;
  for (let i = 0; i < params.length; i++) params[i] = params[i]! - deltaSum[i]! * inv;
}

/**
 * Σ (n_r/N)·v_r over the ranks, in rank order, into `out` (the averaged momentum when
 * --average-optimizer-state is on). Ranks that saw no example carry no weight.
 */
export function weightedAverage(out: Float32Array, parts: readonly Float32Array[], weights: readonly number[]): void {
  let total = 0;
  for (const w of weights) total += w;
  if (!(total > 0)) throw new RangeError(`a weighted average needs a positive total weight, got ${total}`);
  out.fill(0);
  for (let r = 0; r < parts.length; r++) {
    const w = weights[r]! / total;
    if (w === 0) continue;
    const p = parts[r]!;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + w * p[i]!;
  }
}
