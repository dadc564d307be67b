/**
 * The coordinator's request for one rank's whole round of local SGD over a WebSocket (ws-group.ts
 * sends it, worker/ws-worker.ts answers it): the parameters, the round's batch sizes and η, the
 * optimizer's settings, only this rank's shards of the round's batches (indices, or the rows
 * themselves with --data ship) and, with momentum, the rank's starting velocity. Everything the
 * worker needs comes in the one message, so any worker can run any rank's round, and the same
 * request sent again gives the same reply (how a lost worker's round is redone).
 */
import type { LabelledImages } from '../src/data/idx.js';
import { gatherRankIndices, rankExamples, type LocalRound } from '../src/optim/local-sgd.js';
import type { Section } from '../src/protocol/codec.js';
import type { DataMode } from '../src/protocol/messages.js';

export interface RoundRequest {
  sections: Section[];
  envelope: Record<string, unknown>;
  /** the examples of this rank's shards, what its delta must count */
  count: number;
  /** the round has momentum: the reply carries the rank's velocity */
  velocity: boolean;
}

/** Builds round requests in buffers kept from round to round (a round's size varies, so they grow). */
export class RoundRequests {
  private indices = new Uint32Array(0);
  private pixels = new Uint8Array(0);
  private labels = new Uint8Array(0);

  constructor(private readonly data: DataMode, private readonly train: LabelledImages, private readonly world: number) {}

  /**
   * Rank `rank`'s request for the round whose global batches are `indices`, one after another.
   * The sections it returns are views of buffers reused by the next call: encode them first.
   */
  build(step: number, params: Section, indices: Uint32Array, round: LocalRound, rank: number): RoundRequest {
    const count = rankExamples(round.batches, rank, this.world);
    if (this.indices.length < count) this.indices = new Uint32Array(count);
    const own = gatherRankIndices(this.indices, indices, round.batches, rank, this.world);
    const sections: Section[] = [params];
    if (this.data === 'local') {
      sections.push(['indices', own]);
    } else {
      const D = this.train.rows * this.train.cols;
      if (this.labels.length < count) {
        this.pixels = new Uint8Array(count * D);
        this.labels = new Uint8Array(count);
      }
      for (let b = 0; b < count; b++) {
        const idx = own[b]!;
        this.pixels.set(this.train.images.subarray(idx * D, (idx + 1) * D), b * D);
        this.labels[b] = this.train.labels[idx]!;
      }
      sections.push(['pixels', this.pixels.subarray(0, count * D)], ['labels', this.labels.subarray(0, count)]);
    }
    const velocity = round.velocities?.[rank] ?? null;
    // The velocity goes as float32 whatever --wire says. It is state, not an increment: each
    // round replaces it, so nothing telescopes and error feedback could not give back what a
    // 16-bit rounding took (μ = 0.9 would carry that error for ~10 rounds). And a lost rank's
    // round is redone, and a run resumed, from the exact velocity the coordinator holds.
    if (velocity !== null) sections.push(['velocity', velocity]);
    return {
      sections, count, velocity: velocity !== null,
      envelope: {
        type: 'round', step, rank, world: this.world, count, batches: round.batches, etas: round.etas,
        momentum: round.momentum, weightDecay: round.weightDecay, trainSize: round.trainSize,
      },
    };
  }
}
