/**
 * The coordinator's cost of adding one worker's gradient sums into the total, timed on the
 * engine's own addInto kernel: the cost model's reduce term when no multi-worker cell was run.
 */
import type { Kernels } from '../../src/tensor/kernels.js';
import { median } from '../../src/profile/stats.js';

/** Median ms per float of kernels.addInto over n floats (a few repetitions after a warm-up). */
export function reducePerFloatMs(kernels: Kernels, n: number, reps = 9): number {
  const y = kernels.alloc(n);
  const x = kernels.alloc(n);
  const inner = Math.max(1, Math.ceil(200_000 / n));
  const times: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) kernels.addInto(y, x, n);
    if (r > 0) times.push((performance.now() - t0) / inner / n);
  }
  return median(times);
}
