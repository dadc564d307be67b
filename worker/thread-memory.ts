/**
 * The shared memory of the thread-pool group: the training images (one copy for every thread),
 * the parameters the coordinator publishes before each step, the indices of the global batch,
 * and one gradient slot per rank that the worker fills and the coordinator's reduction reads.
 * A local-SGD round adds its batch sizes, learning rates and optimizer settings (`round`) and,
 * with momentum, one velocity slot per rank that the coordinator fills and the rank overwrites.
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
/** the steps of the local-SGD round being served (see `round`); 0: a plain step of one global batch */
export const CTRL_ROUND_STEPS = 7;
const CTRL_WORDS = 8;

/**
 * The layout of `round` (float64, which holds batch sizes and the caller's η exactly): the
 * optimizer's settings, then the K batch sizes at ROUND_HEADER, then the K η at
 * ROUND_HEADER + maxRoundSteps.
 */
const ROUND_MOMENTUM = 0;
const ROUND_WEIGHT_DECAY = 1;
const ROUND_TRAIN_SIZE = 2;
const ROUND_HEADER = 3;

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
import type { LocalRound } from '../src/optim/local-sgd.js';

/** The buffers every thread receives once, at start-up. */
export interface ThreadMemory {
  /** the parameters of the current step, [paramCount], written by the coordinator only */
  params: Float32Array;
  /**
   * the global batch's indices, [maxBatch × maxRoundSteps]; rank r reads its shard range of them
   * (a local round: of each of its batches, which lie one after another)
   */
  indices: Uint32Array;
  /** one gradient-sum slot per rank, [world, paramCount]; rank r writes row r only (a local round: its weighted delta) */
  grads: Float32Array;
  /** the local-SGD round being served, [3 + 2 × maxRoundSteps] float64 (see ROUND_*), written by the coordinator only */
  round: Float64Array;
  /**
   * one velocity slot per rank, [world, paramCount], for local rounds with momentum: the
   * coordinator writes rank r's starting velocity to row r, rank r overwrites it with its final
   * one. Null when the group serves no round longer than one step (maxRoundSteps 1).
   */
  velocities: Float32Array | null;
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
  /** the most steps a local-SGD round may have */
  maxRoundSteps: number;
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
export function allocThreadMemory(paramCount: number, world: number, maxBatch: number, maxRoundSteps: number,
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
    indices: new Uint32Array(new SharedArrayBuffer(maxBatch * maxRoundSteps * 4)),
    grads: grads ?? new Float32Array(new SharedArrayBuffer(world * paramCount * 4)),
    round: new Float64Array(new SharedArrayBuffer((ROUND_HEADER + 2 * maxRoundSteps) * 8)),
    // a group started for rounds of one step is one that trains per step: no velocity to keep
    velocities: maxRoundSteps > 1 ? new Float32Array(new SharedArrayBuffer(world * paramCount * 4)) : null,
    control: new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4)),
    replies: new Float64Array(new SharedArrayBuffer(world * REPLY_FIELDS * 8)),
    // the typed array covers the buffer as it is now: a later growth of the engine's memory is
    // not visible through it, and the coordinator copies parameters allocated beyond it instead
    engineMemory: grads ? new Float32Array(grads.buffer as SharedArrayBuffer) : null,
    paramCount, world, maxBatch, maxRoundSteps, ...spin,
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

/** Rank r's velocity slot: a view, no copy. */
export function velocitySlot(m: ThreadMemory, rank: number): Float32Array {
  if (m.velocities === null) throw new Error('this thread memory has no velocity slots (it was allocated for rounds of one step)');
  return m.velocities.subarray(rank * m.paramCount, (rank + 1) * m.paramCount);
}

/**
 * Publishes a round's batch sizes, learning rates and optimizer settings (not its velocities,
 * which go to the velocity slots); the caller has checked that it fits maxRoundSteps.
 */
export function writeRound(m: ThreadMemory, round: LocalRound): void {
  const r = m.round;
  r[ROUND_MOMENTUM] = round.momentum;
  r[ROUND_WEIGHT_DECAY] = round.weightDecay;
  r[ROUND_TRAIN_SIZE] = round.trainSize;
  for (let j = 0; j < round.batches.length; j++) {
    r[ROUND_HEADER + j] = round.batches[j]!;
    r[ROUND_HEADER + m.maxRoundSteps + j] = round.etas[j]!;
  }
}

/**
 * The round of `steps` steps that writeRound published; `velocities` (one view per rank) are
 * handed on when the round has momentum.
 */
export function readRound(m: ThreadMemory, steps: number, velocities: Float32Array[] | null): LocalRound {
  const r = m.round;
  const batches = Array.from(r.subarray(ROUND_HEADER, ROUND_HEADER + steps));
  const etas = Array.from(r.subarray(ROUND_HEADER + m.maxRoundSteps, ROUND_HEADER + m.maxRoundSteps + steps));
  const momentum = r[ROUND_MOMENTUM]!;
  return {
    batches, etas, momentum, weightDecay: r[ROUND_WEIGHT_DECAY]!, trainSize: r[ROUND_TRAIN_SIZE]!,
    velocities: momentum !== 0 ? velocities : null,
  };
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
