/**
 * The cost model's probes for `dpt bench`, per net: κ (how much ranks on every core at once slow
 * each other) and the compute curve at every shard size a cell or a what-if asks about. The bench
 * probes again before every repetition and the figures are pooled — κ: the lower quartile of
 * every round's ratio (kappaOf); the curve: the median per size of the repetitions' medians — so
 * one noisy spell of the machine, a probe of ~1 s against minutes of cells, does not set them: at
 * the start of one run κ came out 1.52 while that run's own two-rank cells showed none.
 */
import type { LabelledImages } from '../../src/data/idx.js';
import { contentionRatios, CONTENTION_SHARD, kappaOf } from './contention.js';
import { fmtMs } from '../../src/profile/format.js';
import { median } from '../../src/profile/stats.js';
import { computeCurve } from './compute-curve.js';
import type { Session } from '../../coordinator/session.js';

export class ModelProbes {
  private readonly ratios: number[][];
  private readonly curves: Record<number, number>[][];

  /** `shards`: every shard size the model will be asked about */
  constructor(private readonly sessions: Session[], private readonly train: LabelledImages, private readonly cores: number,
    private readonly shards: number[]) {
    this.ratios = sessions.map(() => []);
    this.curves = sessions.map(() => []);
  }

  /** One round of probes for every net; returns a line per net for the progress output. */
  async probe(): Promise<string[]> {
    const lines: string[] = [];
    for (const [n, session] of this.sessions.entries()) {
      const spec = session.config.spec;
      const ratios = await contentionRatios({ spec, kernels: session.config.kernels, train: this.train, cores: this.cores, shard: CONTENTION_SHARD, rounds: 3 });
      this.ratios[n]!.push(...ratios);
      const curve = computeCurve({ spec, kernels: session.kernels, train: this.train, shards: this.shards, rounds: 3 });
      this.curves[n]!.push(curve);
      lines.push(`probes, ${spec.sizes.join('-')}: ${this.cores} ranks at once compute ${ratios.map((r) => `${r.toFixed(2)}x`).join(', ')} the time of one alone; ` +
        `compute curve ${Object.entries(curve).map(([size, ms]) => `${size}: ${fmtMs(ms)}`).join(', ')}`);
    }
    return lines;
  }

  /** κ by net key, pooled over every probe so far. */
  contention(): Record<string, number> {
    return Object.fromEntries(this.sessions.map((s, n) => [s.config.spec.sizes.join('-'), this.cores <= 1 ? 1 : kappaOf(this.ratios[n]!)]));
  }

  /** The compute curve by net key: per shard size, the median of the probes' medians. */
  computeCurves(): Record<string, Record<number, number>> {
    return Object.fromEntries(this.sessions.map((s, n) => {
      const runs = this.curves[n]!;
      const sizes = Object.keys(runs[0] ?? {}).map(Number);
      return [s.config.spec.sizes.join('-'), Object.fromEntries(sizes.map((size) => [size, median(runs.map((cv) => cv[size]!))]))];
    }));
  }
}
