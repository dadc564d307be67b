/**
 * The one interface every way of running workers implements: in-process (world size 1 of it is
 * the single-node baseline), a thread pool, and WebSocket worker processes. The coordinator asks
 * for one step at a time; the group cuts the global batch into shards (shardRange), has rank r
 * compute shard r, and returns the per-rank sums IN RANK ORDER so the reduction never depends
 * on which worker answered first.
 */

export type TransportName = 'inproc' | 'threads' | 'ws';
export const TRANSPORTS: readonly TransportName[] = ['inproc', 'threads', 'ws'];
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
  /** the whole global batch, as indices into the training set */
  indices: Uint32Array;
}

export interface WorkerTiming {
  /** worker-side milliseconds: gathering examples, forward+backward, and (remote) decode/encode */
  loadMs: number;
  computeMs: number;
  decodeMs: number;
  encodeMs: number;
}

export interface ShardResult {
  rank: number;
  /** Σ ∇C_x over the shard; valid until the next computeStep call */
  grads: Float32Array;
  loss: number;
  count: number;
  /** the worker's own timing of its part of the step */
  timing: WorkerTiming;
  /** bytes this rank's exchange put on the wire this step (0 for in-process and shared memory) */
  bytesSent: number;
  bytesReceived: number;
  /**
   * Coordinator clock (performance.now(), ms): when this rank's request was handed to the
   * transport, and when its reply had been received and decoded. roundTrip = receivedAt − sentAt;
   * communication = roundTrip − (the worker's own time) − queueWaitMs − coordinator encode/decode.
   */
  sentAt: number;
  receivedAt: number;
  /** coordinator-side ms spent encoding this rank's request and decoding its reply */
  encodeMs: number;
  decodeMs: number;
  /** ms the request waited for a free worker before running (thread pool queue; 0 where unknown) */
  queueWaitMs: number;
}

export interface WorkerGroup {
  readonly transport: TransportName;
  readonly world: number;
  /** Computes the shards of one global batch; results[r] belongs to rank r. */
  computeStep(req: StepRequest): Promise<ShardResult[]>;
  /** Stops every worker; safe to call twice. */
  close(): Promise<void>;
  /**
   * No step will come for a while (another configuration's turn in a benchmark): workers that
   * poll for the next step stop polling and sleep until it comes. Optional; a hint only.
   */
  idle?(): void;
}

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
  constructor(readonly code: string, readonly rank: number, readonly step: number, message: string) {
    super(`${code}: worker ${rank} failed at step ${step}: ${message}`);
  }
}
