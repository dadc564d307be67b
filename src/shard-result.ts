/**
 * What one rank returns for its shard of a step, whatever the transport: the gradient and loss
 * sums, and the timestamps the profiler turns into phases. Defined in the core so the profiler
 * can read it without knowing about worker groups.
 */

export interface WorkerTiming {
  /** worker-side milliseconds: gathering examples, forward+backward, and (remote) decode/encode */
  loadMs: number;
  computeMs: number;
  decodeMs: number;
  encodeMs: number;
}

export interface ShardResult {
  rank: number;
  /**
   * Σ ∇C_x over the shard; for a local-SGD round, the rank's weighted parameter delta
   * n·(p₀ − p) instead (src/optim/local-sgd.ts). Valid until the next computeStep call.
   */
  grads: Float32Array;
  /** a local-SGD round with momentum: the rank's velocity at the end of the round */
  velocity?: Float32Array;
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
   * communication = roundTrip − (the worker's own time) − coordinator encode/decode.
   */
  sentAt: number;
  receivedAt: number;
  /** coordinator-side ms spent encoding this rank's request and decoding its reply */
  encodeMs: number;
  decodeMs: number;
}
