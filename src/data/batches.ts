/**
 * Turning a data set into mini-batches: the seeded epoch permutation, the slice of it that forms
 * global batch s, the shard of that batch that rank r of W computes, and the gather that turns
 * indices into float rows. All pure functions of their arguments, so every worker and the
 * single-node baseline cut the same examples.
 */
import type { Rng } from '../tensor/rng.js';
import type { LabelledImages } from './idx.js';

/** bytes 0..255 become inputs 0..1 */
export const PIXEL_SCALE = 1 / 255;

/** The order of the examples for one epoch: shuffled by rng, or 0..n-1 when shuffle is off. */
export function epochPermutation(n: number, rng: Rng, shuffle: boolean): Uint32Array {
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  if (shuffle) rng.shuffle(perm);
  return perm;
}

/** Number of steps in an epoch of n examples; the last batch may be partial. */
export function stepsPerEpoch(n: number, batch: number): number {
  return Math.ceil(n / batch);
}

/** The indices of global batch `step` (a view into the permutation, no copy). */
export function batchIndices(perm: Uint32Array, step: number, batch: number): Uint32Array {
  return perm.subarray(step * batch, Math.min(perm.length, (step + 1) * batch));
}

/**
 * [start, end) of rank's shard within a batch of `size` examples split over `world` ranks:
 * sizes differ by at most one, the larger shards first. A rank may get an empty shard when
 * size < world.
 */
export function shardRange(size: number, rank: number, world: number): [number, number] {
  const base = Math.floor(size / world);
  const rem = size % world;
  const start = rank * base + Math.min(rank, rem);
  return [start, start + base + (rank < rem ? 1 : 0)];
}

/** Writes rows x/255 and labels of the given examples into dst / dstLabels. */
export function gatherBatch(dst: Float32Array, dstLabels: Uint8Array, set: LabelledImages, indices: ArrayLike<number>): void {
  const D = set.rows * set.cols;
  for (let b = 0; b < indices.length; b++) {
    const idx = indices[b]!;
    const src = idx * D;
    const out = b * D;
    for (let i = 0; i < D; i++) dst[out + i] = set.images[src + i]! * PIXEL_SCALE;
    dstLabels[b] = set.labels[idx]!;
  }
}

/** The same for the consecutive examples start .. start+count-1 (evaluation). */
export function gatherRange(dst: Float32Array, dstLabels: Uint8Array, set: LabelledImages, start: number, count: number): void {
  const D = set.rows * set.cols;
  const src = set.images.subarray(start * D, (start + count) * D);
  for (let i = 0; i < count * D; i++) dst[i] = src[i]! * PIXEL_SCALE;
  dstLabels.set(set.labels.subarray(start, start + count));
}
