/**
 * WebSocket workers with the coordinator computing rank 0 itself, as rank 0 of PyTorch DDP or
 * Horovod does and as the thread group does here: an in-process ShardComputer for rank 0 beside a
 * WsGroup that serves ranks 1..N-1 (firstRank 1) and still cuts every batch into N shards, so
 * `--workers N` means N ranks over every transport. This class only composes the two; the wire,
 * the handshake and worker loss stay in ws-group.ts.
 */
import { shardRange } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { Kernels } from '../src/tensor/kernels.js';
import type { LocalRound } from '../src/optim/local-sgd.js';
import { ShardComputer, type ShardSums } from '../worker/compute.js';
import { LocalRoundRunner } from '../worker/local-round.js';
import { WsGroup, type WsGroupOptions } from './ws-group.js';
import { computedHere, WorkerError, type RankSums, type ShardResult, type StepRequest, type WorkerGroup } from './worker-group.js';

export class CoordinatorRankGroup implements WorkerGroup {
  readonly transport = 'ws' as const;
  /** rank 0 computes in this process: its CPU time is no longer the coordinator's alone (trainer.ts) */
  readonly coordinatorComputes = true;
  private readonly rank0: ShardComputer;
  /** rank 0's local-SGD buffers, made on its first round */
  private rank0Rounds: LocalRoundRunner | null = null;
  /** shards of lost workers the coordinator computes when no worker is left; made on first need */
  private orphans: ShardComputer | null = null;
  private orphanRounds: LocalRoundRunner | null = null;
  private remote: WsGroup | null = null;

  private constructor(private readonly kernels: Kernels, private readonly train: LabelledImages, private readonly maxShard: number,
    private readonly o: WsGroupOptions) {
    this.rank0 = new ShardComputer(o.spec, kernels, maxShard);
    // setup, so the wasm engines' copy of the data set is not timed as the first steps' work
    kernels.holdImages(train.images);
  }

  /**
   * Starts the server for ranks 1..world-1 (workers may connect from now on; see waitForWorkers
   * on `workers`). Rank 0 computes with `kernels`, the coordinator's engine.
   */
  static async listen(o: WsGroupOptions, kernels: Kernels): Promise<CoordinatorRankGroup> {
    if (!(Number.isInteger(o.world) && o.world >= 2)) throw new RangeError(`the coordinator computes rank 0 beside at least one worker: --workers must be 2 or more, got ${o.world}`);
    const g = new CoordinatorRankGroup(kernels, o.train, Math.ceil(o.maxBatch / o.world), o);
    g.remote = await WsGroup.listen({ ...o, firstRank: 1, computeOnCoordinator: (shard, req) => g.computeOrphan(shard, req) });
    return g;
  }

  get world(): number {
    return this.o.world;
  }

  /** The WebSocket group of ranks 1..world-1 (its url, joins, losses). */
  get workers(): WsGroup {
    return this.remote!;
  }

  async computeStep(req: StepRequest): Promise<ShardResult[]> {
    // The workers' requests go out first (computeStep sends them before it returns) and are
    // handed to the kernel in full before rank 0 computes, so the workers compute while this
    // thread computes rank 0; then their replies are awaited.
    const remote = this.workers.computeStep(req);
    // a worker lost meanwhile rejects `remote`, which is awaited below, not left unhandled
    remote.catch(() => {});
    await this.workers.written();
    let own: ShardResult | Error;
    try {
      own = this.computeRank0(req);
    } catch (e) {
      own = e instanceof Error ? e : new Error(String(e));
    }
    // a failure of the workers' part is reported first: it may be why rank 0 had no parameters
    const others = await remote;
    if (own instanceof Error) throw new WorkerError('DPT_ERR_WORKER_FAILED', 0, req.step, `rank 0, on the coordinator: ${own.name}: ${own.message}`);
    return [own, ...others];
  }

  private computeRank0(req: StepRequest): ShardResult {
    const sentAt = performance.now();
    const s: RankSums = req.local
      ? this.round(this.rank0Rounds ??= new LocalRoundRunner(this.rank0), 0, req, req.local)
      : this.compute(this.rank0, 0, req);
    return computedHere(0, s, sentAt);
  }

  /** A lost worker's shard, when no worker is left to take it (the ws group copies the sums at once). */
  private computeOrphan(shard: number, req: StepRequest): RankSums {
    this.orphans ??= new ShardComputer(this.o.spec, this.kernels, this.maxShard);
    if (req.local) return this.round(this.orphanRounds ??= new LocalRoundRunner(this.orphans), shard, req, req.local);
    return this.compute(this.orphans, shard, req);
  }

  /** Rank `rank`'s whole local-SGD round, from the parameters the workers start theirs from. */
  private round(runner: LocalRoundRunner, rank: number, req: StepRequest, round: LocalRound): RankSums {
    const s = runner.run(this.workers.stepParams(req), this.train, req.indices, round, rank, this.world);
    return { grads: s.delta, velocity: s.velocity, loss: s.loss, count: s.count, loadMs: s.loadMs, computeMs: s.computeMs };
  }

  /** Shard `shard` of the step on the parameters the workers compute on (rounded ones on a 16-bit wire). */
  private compute(computer: ShardComputer, shard: number, req: StepRequest): ShardSums {
    const [start, end] = shardRange(req.indices.length, shard, this.world);
    return computer.computeIndexed(this.workers.stepParams(req), this.train, req.indices.subarray(start, end));
  }

  async close(reason?: string): Promise<void> {
    await this.remote?.close(reason);
  }
}
