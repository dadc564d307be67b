/**
 * N logical workers computed one after another in the coordinator's thread. With N = 1 this IS
 * the single-node trainer (no separate code path); with N > 1 it checks the sharding and rank-
 * order reduction without any concurrency, which makes it the reference for the other groups.
 */
import { shardRange } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { NetworkSpec } from '../src/model/spec.js';
import type { Kernels } from '../src/tensor/kernels.js';
import type { LocalRound } from '../src/optim/local-sgd.js';
import { ShardComputer } from '../worker/compute.js';
import { LocalRoundRunner } from '../worker/local-round.js';
import { computedHere, type ShardResult, type StepRequest, type WorkerGroup } from './worker-group.js';

/**
 * Fault-injection knob (tests and demos only, never set by the CLI): one rank spins for extra
 * milliseconds inside its COMPUTE, like a worker on a slower CPU, so the profiler's straggler
 * detection can be checked against a known answer.
 */
export interface InProcessFaults {
  slowRank: number;
  extraComputeMs: number;
}

export class InProcessGroup implements WorkerGroup {
  readonly transport = 'inproc' as const;
  private readonly computers: ShardComputer[];
  /** each rank's local-SGD buffers, made on the first round */
  private readonly runners: (LocalRoundRunner | null)[];

  constructor(spec: NetworkSpec, kernels: Kernels, private readonly train: LabelledImages,
    readonly world: number, maxBatch: number, private readonly faults: InProcessFaults | null = null) {
    if (!(Number.isInteger(world) && world >= 1)) throw new RangeError(`--workers must be a positive integer, got ${world}`);
    const maxShard = Math.ceil(maxBatch / world);
    this.computers = Array.from({ length: world }, () => new ShardComputer(spec, kernels, maxShard));
    this.runners = this.computers.map(() => null);
    // setup, so the wasm engines' copy of the data set is not timed as the first steps' work
    kernels.holdImages(train.images);
  }

  async computeStep(req: StepRequest): Promise<ShardResult[]> {
    if (req.local) return this.computeRound(req, req.local);
    const results: ShardResult[] = [];
    for (let rank = 0; rank < this.world; rank++) {
      const sentAt = performance.now();
      const [start, end] = shardRange(req.indices.length, rank, this.world);
      const s = this.computers[rank]!.computeIndexed(req.params, this.train, req.indices.subarray(start, end));
      const slowedMs = this.faults !== null && rank === this.faults.slowRank ? spin(this.faults.extraComputeMs) : 0;
      results.push(computedHere(rank, slowedMs === 0 ? s : { ...s, computeMs: s.computeMs + slowedMs }, sentAt));
    }
    return results;
  }

  private computeRound(req: StepRequest, round: LocalRound): ShardResult[] {
    const results: ShardResult[] = [];
    for (let rank = 0; rank < this.world; rank++) {
      const sentAt = performance.now();
      const runner = this.runners[rank] ??= new LocalRoundRunner(this.computers[rank]!);
      const s = runner.run(req.params, this.train, req.indices, round, rank, this.world);
      results.push(computedHere(rank, { ...s, grads: s.delta }, sentAt));
    }
    return results;
  }

  async close(): Promise<void> {}
}

/** Busy-waits ms milliseconds (a slower CPU, not a sleep); returns the time actually spent. */
function spin(ms: number): number {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) { /* spinning on purpose */ }
  return performance.now() - t0;
}
