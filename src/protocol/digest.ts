/**
 * A fingerprint of a training set, so that a worker holding its own copy of MNIST (--data local)
 * can prove in the handshake that its first N examples are the coordinator's first N.
 */
import { createHash } from 'node:crypto';
import type { LabelledImages } from '../data/idx.js';

/** sha256 over count, shape, pixels and labels (hex). */
export function datasetDigest(set: LabelledImages): string {
  const h = createHash('sha256');
  h.update(`${set.count}x${set.rows}x${set.cols};`);
  h.update(set.images.subarray(0, set.count * set.rows * set.cols));
  h.update(set.labels.subarray(0, set.count));
  return h.digest('hex');
}
