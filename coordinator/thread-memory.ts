/**
 * The shared memory of the thread-pool group: the training images (one copy for every thread),
 * the parameters the coordinator publishes before each step, the indices of the global batch,
 * and one gradient slot per rank that the worker fills and the coordinator's reduction reads.
 * Nothing in here is ever structured-cloned per step: typed arrays over SharedArrayBuffers are
 * posted once (workerData) and both sides keep views into the same bytes.
 */
import type { LabelledImages } from '../src/data/idx.js';

/** The buffers every thread receives once, at start-up. */
export interface ThreadMemory {
  /** the parameters of the current step, [paramCount], written by the coordinator only */
  params: Float32Array;
  /** the global batch's indices, [maxBatch]; rank r reads its shard range of them */
  indices: Uint32Array;
  /** one gradient-sum slot per rank, [world, paramCount]; rank r writes row r only */
  grads: Float32Array;
  paramCount: number;
  world: number;
  maxBatch: number;
}

export function allocThreadMemory(paramCount: number, world: number, maxBatch: number): ThreadMemory {
  return {
    params: new Float32Array(new SharedArrayBuffer(paramCount * 4)),
    indices: new Uint32Array(new SharedArrayBuffer(maxBatch * 4)),
    grads: new Float32Array(new SharedArrayBuffer(world * paramCount * 4)),
    paramCount, world, maxBatch,
  };
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
