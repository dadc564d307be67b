/**
 * The one interface every way of running workers implements: in-process (world size 1 of it is
 * the single-node baseline), a thread pool, and WebSocket worker processes. The coordinator asks
 * for one step at a time; the group cuts the global batch into shards (shardRange), has rank r
 * compute shard r, and returns the per-rank sums IN RANK ORDER so the reduction never depends
 * on which worker answered first.
 */

import type { TransportName } from '../src/config.js';
import type { LocalRound } from '../src/optim/local-sgd.js';
import type { ShardResult } from '../src/shard-result.js';

export type { ShardResult, WorkerTiming } from '../src/shard-result.js';
/**
 * Transports whose workers are other processes: there the coordinator process's CPU time during
 * an exchange is its own work on that exchange (in-process and thread workers add theirs to it).
 */
export const OUT_OF_PROCESS: ReadonlySet<string> = new Set<TransportName>(['ws']);

export interface StepRequest {
  /** global step number since the start of training, carried on every message */
  step: number;
  /** current parameters (the coordinator's buffer; groups must not keep it past the call) */
  params: Float32Array;
  /** the whole global batch, as indices into the training set (a local round: its batches one after another) */
  indices: Uint32Array;
  /**
   * Present for a round of local SGD: each rank steps its own copy of `params` through the
   * round's batches and returns its weighted delta and velocity (src/optim/local-sgd.ts).
   */
  local?: LocalRound;
}

export interface WorkerGroup {
  readonly transport: TransportName;
  readonly world: number;
  /**
   * True when a group of an OUT_OF_PROCESS transport also computes a rank in the coordinator's
   * process (ws with rank 0 on the coordinator): its CPU time in an exchange is then not its own alone.
   */
  readonly coordinatorComputes?: boolean;
  /** Computes the shards of one global batch; results[r] belongs to rank r. */
  computeStep(req: StepRequest): Promise<ShardResult[]>;
  /**
   * Stops every worker; safe to call twice. `reason` is what remote workers log as they stop
   * (default: training finished), so a failed or interrupted run does not read as a success there.
   */
  close(reason?: string): Promise<void>;
}

/** What a rank computed in the coordinator's own process hands back: sums (or a round's delta as `grads`), no wire. */
export interface RankSums {
  grads: Float32Array;
  velocity?: Float32Array | null;
  loss: number;
  count: number;
  loadMs: number;
  computeMs: number;
}

/** The result of a rank computed in the coordinator's process since `sentAt`: nothing crossed a wire, nothing was encoded. */
export function computedHere(rank: number, s: RankSums, sentAt: number): ShardResult {
  const result: ShardResult = {
    rank, grads: s.grads, loss: s.loss, count: s.count,
    timing: { loadMs: s.loadMs, computeMs: s.computeMs, decodeMs: 0, encodeMs: 0 },
    bytesSent: 0, bytesReceived: 0, sentAt, receivedAt: performance.now(), encodeMs: 0, decodeMs: 0,
  };
  if (s.velocity) result.velocity = s.velocity;
  return result;
}

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
  constructor(readonly code: string, readonly rank: number, readonly step: number, message: string) {
    super(`${code}: worker ${rank} failed at step ${step}: ${message}`);
  }
}
