/**
 * The cost model's probe for `dpt bench`: the lockstep probe (lockstep.ts) of every net, at every
 * shard size and rank count the model will be asked about, run again before every repetition;
 * per point the figure is the median over the repetitions, so one noisy spell of the machine (a
 * probe of about a second against minutes of cells) does not set it.
 */
import type { KernelChoice } from '../../src/config.js';
import type { LabelledImages } from '../../src/data/idx.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { describeTable } from '../../src/profile/bench-tables.js';
import type { LockstepTable } from '../../src/profile/model.js';
import { median } from '../../src/profile/stats.js';
import { measureLockstep, type LockstepPoint } from './lockstep.js';

/**
 * The points the model reads for global batches `batches`, worker counts `workers` and core
 * counts `cores` (the machine's, and a what-if's smaller one): one rank alone at every shard
 * ⌈B/W⌉ (ranks taking turns, a worker on a machine of its own, the single node), and min(W, C)
 * ranks at once at each W's shard.
 */
export function probePoints(batches: number[], workers: number[], cores: number[]): LockstepPoint[] {
  const points = new Map<string, LockstepPoint>();
  const add = (shard: number, ranks: number) => points.set(`${ranks}@${shard}`, { shard, ranks });
  for (const B of batches) {
    for (const W of workers) {
      const shard = Math.ceil(B / W);
      add(shard, 1);
      for (const C of cores) add(shard, Math.max(1, Math.min(W, C)));
    }
  }
  return [...points.values()].sort((a, b) => a.ranks - b.ranks || a.shard - b.shard);
}

export class ModelProbes {
  private readonly runs: LockstepTable[][];

  constructor(private readonly specs: NetworkSpec[], private readonly kernels: KernelChoice, private readonly train: LabelledImages,
    private readonly points: LockstepPoint[]) {
    this.runs = specs.map(() => []);
  }

  /** One probe of every net; returns a line per net for the progress output. */
  async probe(): Promise<string[]> {
    const lines: string[] = [];
    for (const [n, spec] of this.specs.entries()) {
      const table = await measureLockstep({ spec, kernels: this.kernels, train: this.train, points: this.points });
      this.runs[n]!.push(table);
      lines.push(`lockstep probe, ${spec.sizes.join('-')}: ${describeTable(table)}`);
    }
    return lines;
  }

  /** By net key: per point, the median over every probe so far. */
  tables(): Record<string, LockstepTable> {
    return Object.fromEntries(this.specs.map((spec, n) => {
      const table: LockstepTable = {};
      for (const p of this.points) (table[p.ranks] ??= {})[p.shard] = median(this.runs[n]!.map((t) => t[p.ranks]![p.shard]!));
      return [spec.sizes.join('-'), table];
    }));
  }
}
