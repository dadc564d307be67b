/** A small seeded set of random "images" for tests that need many fast steps, not real digits. */
import type { LabelledImages } from '../../src/data/idx.js';
import { Rng } from '../../src/tensor/rng.js';

/** `count` images of rows × cols random bytes, labels uniform in 0 .. classes-1. */
export function randomSet(count: number, seed: number, rows = 2, cols = 3, classes = 3): LabelledImages {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: count * rows * cols }, () => rng.nextInt(256));
  const labels = Uint8Array.from({ length: count }, () => rng.nextInt(classes));
  return { images, labels, count, rows, cols };
}
