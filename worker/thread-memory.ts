/**
 * The shared memory of the thread-pool group: the training images (one copy for every thread),
 * the parameters the coordinator publishes before each step, the indices of the global batch,
 * and one gradient slot per rank that the worker fills and the coordinator's reduction reads.
 * Nothing in here is ever structured-cloned per step: typed arrays over SharedArrayBuffers are
 * posted once (workerData) and both sides keep views into the same bytes. A step is signalled
 * through the control words with Atomics (see CTRL_*), and each rank's loss, count and timing
 * come back in its row of `replies`.
 */

/** control[CTRL_GEN] is bumped once per step (and once to stop); workers Atomics.wait on it */
export const CTRL_GEN = 0;
/** ranks that finished the current step (or, before the first step, that are ready) */
export const CTRL_DONE = 1;
/** non-zero: workers leave their loop at the next bump of CTRL_GEN */
export const CTRL_STOP = 2;
/** the step being computed and the size of its global batch */
export const CTRL_STEP = 3;
export const CTRL_BATCH = 4;
/**
 * Where this step's parameters are: -1 in `params`, otherwise the float index in `engineMemory`
 * of the coordinator's own parameter buffer, which the threads then read in place (no publish copy)
 */
export const CTRL_PARAMS_AT = 5;
/** threads spinning for the next step right now (at most ThreadMemory.maxSpinners) */
export const CTRL_SPINNERS = 6;
const CTRL_WORDS = 7;

/** The fields of one rank's row of `replies` (float64). R_STEP is written last. */
export const R_LOSS = 0;
export const R_COUNT = 1;
export const R_LOAD_MS = 2;
export const R_COMPUTE_MS = 3;
export const R_DECODE_MS = 4;
export const R_ENCODE_MS = 5;
export const R_STEP = 6;
export const REPLY_FIELDS = 7;
import type { LabelledImages } from '../src/data/idx.js';

/** The buffers every thread receives once, at start-up. */
export interface ThreadMemory {
  /** the parameters of the current step, [paramCount], written by the coordinator only */
  params: Float32Array;
  /** the global batch's indices, [maxBatch]; rank r reads its shard range of them */
  indices: Uint32Array;
  /** one gradient-sum slot per rank, [world, paramCount]; rank r writes row r only */
  grads: Float32Array;
  /** signalling words, see CTRL_* */
  control: Int32Array;
  /** [world, REPLY_FIELDS]: rank r's sums and timing of the current step */
  replies: Float64Array;
  /**
   * The whole shared memory of the coordinator's engine as it was at start-up (null when the
   * engine's buffers are not shared, e.g. the js engine): `params` and `grads` then live in it, and
   * so may the coordinator's own parameters, which the threads read in place (CTRL_PARAMS_AT).
   */
  engineMemory: Float32Array | null;
  paramCount: number;
  world: number;
  maxBatch: number;
  /**
   * Waiting for the next step, a thread that finished first spins up to spinMs before it sleeps in
   * Atomics.wait, and at most maxSpinners threads spin at once (see thread-task.ts); 0: never spin.
   */
  spinMs: number;
  maxSpinners: number;
}

/**
 * Allocates the group's memory. With `engineAlloc` (the coordinator engine's alloc) the parameter
 * buffer and the gradient slots are allocated in the coordinator engine's memory when that memory
 * is shared (the wasm and blas engines: a shared WebAssembly.Memory), so the coordinator's kernels
 * (the rank-order reduction) read the slots in place instead of staging a copy of each.
 */
export function allocThreadMemory(paramCount: number, world: number, maxBatch: number,
  engineAlloc?: (length: number) => Float32Array, spin: { spinMs: number; maxSpinners: number } = { spinMs: 0, maxSpinners: 0 }): ThreadMemory {
  let params: Float32Array | null = null;
  let grads: Float32Array | null = null;
  if (engineAlloc) {
    const probe = engineAlloc((world + 1) * paramCount);
    if (probe.buffer instanceof SharedArrayBuffer) {
      params = probe.subarray(0, paramCount);
      grads = probe.subarray(paramCount);
    }
  }
  return {
    params: params ?? new Float32Array(new SharedArrayBuffer(paramCount * 4)),
    indices: new Uint32Array(new SharedArrayBuffer(maxBatch * 4)),
    grads: grads ?? new Float32Array(new SharedArrayBuffer(world * paramCount * 4)),
    control: new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4)),
    replies: new Float64Array(new SharedArrayBuffer(world * REPLY_FIELDS * 8)),
    // the typed array covers the buffer as it is now: a later growth of the engine's memory is
    // not visible through it, and the coordinator copies parameters allocated beyond it instead
    engineMemory: grads ? new Float32Array(grads.buffer as SharedArrayBuffer) : null,
    paramCount, world, maxBatch, ...spin,
  };
}

/**
 * The float index in m.engineMemory of `params` when the threads can read it in place (it is a
 * view of that same buffer, within the part they see), else -1.
 */
export function paramsIndexIn(m: ThreadMemory, params: Float32Array): number {
  const mem = m.engineMemory;
  if (mem === null || params.buffer !== mem.buffer || params.length !== m.paramCount) return -1;
  return params.byteOffset >> 2;
}

/** Rank r's gradient slot: a view, no copy. */
export function gradSlot(m: ThreadMemory, rank: number): Float32Array {
  return m.grads.subarray(rank * m.paramCount, (rank + 1) * m.paramCount);
}

/**
 * The same examples with images and labels in SharedArrayBuffers, so every thread reads the one
 * copy. A set that is already shared is returned as it is (no copy); otherwise it is copied once.
 */
export function shareImages(set: LabelledImages): LabelledImages {
  if (set.images.buffer instanceof SharedArrayBuffer && set.labels.buffer instanceof SharedArrayBuffer) return set;
  const images = new Uint8Array(new SharedArrayBuffer(set.images.length));
  images.set(set.images);
  const labels = new Uint8Array(new SharedArrayBuffer(set.labels.length));
  labels.set(set.labels);
  return { images, labels, count: set.count, rows: set.rows, cols: set.cols };
}
