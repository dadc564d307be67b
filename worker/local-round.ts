/**
 * A rank's part of one local-SGD round, whatever the transport: starting from the coordinator's
 * parameters, take one SGD step per global batch of the round on this rank's shard of it, then
 * hand back the weighted delta n·(p₀ − p) (see src/optim/local-sgd.ts) and, with momentum, the
 * rank's velocity. Pure computation: the caller moves the bytes.
 */
import { shardRange } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { LocalRound } from '../src/optim/local-sgd.js';
import { Sgd } from '../src/optim/sgd.js';
import type { ShardComputer } from './compute.js';

export interface LocalRoundSums {
  /** n·(p₀ − p_end), in the parameter layout (owned by the runner, overwritten next round) */
  delta: Float32Array;
  /** the rank's velocity after the round (owned by the runner); null without momentum */
  velocity: Float32Array | null;
  /** Σ loss over this rank's examples of the round, each at the parameters the rank held when it stepped on it */
  loss: number;
  /** n: the examples this rank stepped on */
  count: number;
  loadMs: number;
  computeMs: number;
}

/** The buffers a rank keeps from round to round: its working copy of the parameters and its optimizer. */
export class LocalRoundRunner {
  private readonly work: Float32Array;
  private readonly delta: Float32Array;
  private sgd: Sgd | null = null;

  constructor(private readonly computer: ShardComputer) {
    const size = computer.network.layout.size;
    this.work = computer.kernels.alloc(size);
    this.delta = computer.kernels.alloc(size);
  }

  /**
   * Runs rank `rank` of `world` through the round. `indices` are the round's global batches one
   * after another, as indices into `set`.
   */
  run(start: Float32Array, set: LabelledImages, indices: Uint32Array, round: LocalRound, rank: number, world: number): LocalRoundSums {
    return this.runWith(start, round, rank, world, (idx) => this.computer.computeIndexed(this.work, set, idx), indices);
  }

  /**
   * The same for a rank that holds the data set but was sent only its own indices: `own` holds
   * this rank's shard of every step, one after another (src/optim/local-sgd.ts gatherRankIndices).
   */
  runOwn(start: Float32Array, set: LabelledImages, own: Uint32Array, round: LocalRound, rank: number, world: number): LocalRoundSums {
    let at = 0;
    return this.runWith(start, round, rank, world, (_idx, count) => {
      const sums = this.computer.computeIndexed(this.work, set, own.subarray(at, at + count));
      at += count;
      return sums;
    }, null);
  }

  /**
   * The same for shipped rows: `pixels`/`labels` hold this rank's examples of the whole round, one
   * step's shard after another (the coordinator ships only the rank's own rows).
   */
  runShipped(start: Float32Array, pixels: Uint8Array, labels: Uint8Array, round: LocalRound, rank: number, world: number): LocalRoundSums {
    const d = this.computer.network.inputSize;
    let at = 0;
    return this.runWith(start, round, rank, world, (_idx, count) => {
      const sums = this.computer.computeShipped(this.work, pixels.subarray(at * d, (at + count) * d), labels.subarray(at, at + count), count);
      at += count;
      return sums;
    }, null);
  }

  private runWith(start: Float32Array, round: LocalRound, rank: number, world: number,
    compute: (indices: Uint32Array, count: number) => { grads: Float32Array; loss: number; count: number; loadMs: number; computeMs: number },
    indices: Uint32Array | null): LocalRoundSums {
    checkRound(round, rank, world);
    const sgd = this.optimizerFor(round);
    const velocity = round.velocities?.[rank] ?? null;
    if (sgd.velocity !== null) {
      if (velocity === null) throw new Error(`a round with momentum ${round.momentum} needs rank ${rank}'s velocity`);
      sgd.velocity.set(velocity);
    }
    this.work.set(start);
    let loss = 0;
    let count = 0;
    let loadMs = 0;
    let computeMs = 0;
    let offset = 0;
    for (let j = 0; j < round.batches.length; j++) {
      const batch = round.batches[j]!;
      const [s, e] = shardRange(batch, rank, world);
      const shard = indices === null ? EMPTY : indices.subarray(offset + s, offset + e);
      offset += batch;
      // a rank with an empty shard (batch smaller than the world) sits this step out
      if (e === s) continue;
      const sums = compute(shard, e - s);
      sgd.setEta(round.etas[j]!);
      sgd.step(this.work, sums.grads, sums.count);
      loss += sums.loss;
      count += sums.count;
      loadMs += sums.loadMs;
      computeMs += sums.computeMs;
    }
    const delta = this.delta;
    for (let i = 0; i < delta.length; i++) delta[i] = count * (start[i]! - this.work[i]!);
    return { delta, velocity: sgd.velocity, loss, count, loadMs, computeMs };
  }

  /** One optimizer for the life of the runner; rebuilt only if the round's settings change. */
  private optimizerFor(round: LocalRound): Sgd {
    const o = this.sgd?.options;
    if (this.sgd === null || o!.momentum !== round.momentum || o!.weightDecay !== round.weightDecay || o!.trainSize !== round.trainSize) {
      const network = this.computer.network;
      this.sgd = new Sgd(network.layout, this.computer.kernels, {
        eta: round.etas[0] ?? 1, momentum: round.momentum, weightDecay: round.weightDecay, trainSize: round.trainSize,
      });
    }
    return this.sgd;
  }
}

const EMPTY = new Uint32Array(0);

/** A round a rank can run: as many η as steps, and a velocity per rank when there is momentum. */
export function checkRound(round: LocalRound, rank: number, world: number): void {
  if (round.batches.length === 0) throw new RangeError('a local round needs at least one step');
  if (round.etas.length !== round.batches.length) {
    throw new RangeError(`a local round of ${round.batches.length} steps came with ${round.etas.length} learning rates`);
  }
  if (round.velocities !== null && round.velocities.length !== world) {
    throw new RangeError(`a local round for ${world} ranks came with ${round.velocities.length} velocities`);
  }
  if (!(rank >= 0 && rank < world)) throw new RangeError(`rank ${rank} is outside a world of ${world}`);
}
