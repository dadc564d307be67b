/**
 * The compute curve: how long the net's training step takes on this machine for each shard size
 * the cost model will be asked about, measured on the coordinator's own engine. A line through
 * the one-worker cells (batch 128 and 1024, say) does not know that a 64-example shard costs more
 * per example than a 1024-example one (the products fill the vector units and caches less
 * well): fitted that way, the model called two 64-example shards a fifth slower than they were.
 * With the curve, the model keeps one factor per transport (its workers' compute against the
 * coordinator's) and reads the shape from the probe.
 */
import type { LabelledImages } from '../../src/data/idx.js';
import { initParams } from '../../src/model/init.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { median } from '../../src/profile/stats.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { ShardComputer } from '../../worker/compute.js';

export interface CurveOptions {
  spec: NetworkSpec;
  kernels: Kernels;
  train: LabelledImages;
  /** shard sizes to time */
  shards: number[];
  /** timed rounds over all sizes (median per size) */
  rounds?: number;
  /** untimed rounds first, for at least this long: V8 optimises the step's code meanwhile */
  warmupMs?: number;
}

/**
 * Median ms of one training step (gather + forward + backward) per shard size, on random rows.
 * The sizes take turns round by round, so a slow spell of the machine lands on all of them; in its
 * turn a size runs one untimed step and then TIMED_IN_TURN timed ones, as training runs one size
 * step after step: timed right after another size's step, a 64-example step ran with the caches
 * full of a 1024-example step's data and came out ~25% dearer than in training (784-30-10).
 */
const TIMED_IN_TURN = 2;

export function computeCurve(o: CurveOptions): Record<number, number> {
  const sizes = [...new Set(o.shards.map((s) => Math.max(1, Math.ceil(s))))].sort((a, b) => a - b);
  if (sizes.length === 0) return {};
  const computer = new ShardComputer(o.spec, o.kernels, sizes.at(-1)!);
  const params = computer.network.allocParams();
  initParams(params, computer.network.layout, 'scaled', new Rng(1));
  const rng = new Rng(2);
  const indices = new Uint32Array(sizes.at(-1)!);
  const step = (size: number): number => {
    const idx = indices.subarray(0, size);
    for (let i = 0; i < size; i++) idx[i] = rng.nextInt(o.train.count);
    const t0 = performance.now();
    computer.computeIndexed(params, o.train, idx);
    return performance.now() - t0;
  };
  const warmUntil = performance.now() + (o.warmupMs ?? 300);
  do for (const size of sizes) step(size); while (performance.now() < warmUntil);
  const times = sizes.map((): number[] => []);
  for (let r = 0; r < (o.rounds ?? 9); r++) {
    sizes.forEach((size, i) => {
      step(size);
      let ms = 0;
      for (let k = 0; k < TIMED_IN_TURN; k++) ms += step(size);
      times[i]!.push(ms / TIMED_IN_TURN);
    });
  }
  const out: Record<number, number> = {};
  sizes.forEach((size, i) => { out[size] = median(times[i]!); });
  return out;
}
