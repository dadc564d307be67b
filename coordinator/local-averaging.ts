/**
 * The coordinator's side of local SGD: cuts a round of up to K steps, asks the group to run it,
 * averages the ranks' parameters (weighted by their examples) and keeps the momentum: one
 * averaged buffer with --average-optimizer-state (it lives in the coordinator's optimizer, so
 * per-step epochs before and checkpoints see it), else one buffer per rank, held here between
 * rounds so a rank's round can be redone by any worker and a checkpoint holds everything.
 */
import { applyAveragedDelta, weightedAverage, type LocalRound, type LocalSgdPlan } from '../src/optim/local-sgd.js';
import type { Sgd } from '../src/optim/sgd.js';
import type { ShardResult } from './worker-group.js';

/** The steps of the round that starts at step s of the epoch: up to the next multiple of K, the epoch's end or the step limit. */
export function roundLength(s: number, stepsInEpoch: number, every: number, stepsLeft: number): number {
  const end = Math.min(stepsInEpoch, (Math.floor(s / every) + 1) * every, s + stepsLeft);
  return Math.max(1, end - s);
}

/** The steps the first `rounds` rounds of a run cover, each cut at an epoch's end as the trainer cuts it. */
export function stepsInRounds(rounds: number, stepsInEpoch: number, every: number): number {
  let steps = 0;
  for (let r = 0, s = 0; r < rounds; r++) {
    const n = roundLength(s, stepsInEpoch, every, Infinity);
    steps += n;
    s = s + n === stepsInEpoch ? 0 : s + n;
  }
  return steps;
}

export class LocalAveraging {
  /** each rank's own velocity (momentum, not averaged); null otherwise */
  private rankVelocities: Float32Array[] | null = null;

  constructor(private readonly sgd: Sgd, private readonly world: number,
    readonly plan: LocalSgdPlan, resumed: Float32Array[] | undefined) {
    if (resumed !== undefined) {
      if (resumed.length !== world) {
        throw new Error(`the checkpoint holds momentum for ${resumed.length} ranks but this run has ${world}: resume with --workers ${resumed.length}`);
      }
      this.rankVelocities = resumed.map((v) => Float32Array.from(v));
    }
  }

  /** What the ranks need for a round of the given batches and learning rates. */
  round(batches: number[], etas: number[]): LocalRound {
    const o = this.sgd.options;
    return { batches, etas, momentum: o.momentum, weightDecay: o.weightDecay, trainSize: o.trainSize, velocities: this.velocities() };
  }

  private velocities(): Float32Array[] | null {
    const shared = this.sgd.velocity;
    if (shared === null) return null;
    if (this.plan.averageOptimizerState) return Array.from({ length: this.world }, () => shared);
    // the first local round starts every rank from the momentum per-step training had built
    this.rankVelocities ??= Array.from({ length: this.world }, () => Float32Array.from(shared));
    return this.rankVelocities;
  }

  /**
   * Moves params to the ranks' weighted average from the rank-order sum of their deltas, and
   * keeps their velocities.
   */
  absorb(params: Float32Array, deltaSum: Float32Array, examples: number, results: ShardResult[]): void {
    applyAveragedDelta(params, deltaSum, examples);
    const shared = this.sgd.velocity;
    if (shared === null) return;
    const returned = results.map((r) => {
      if (r.velocity === undefined) throw new Error(`rank ${r.rank} returned no velocity from a round with momentum`);
      return r.velocity;
    });
    if (this.plan.averageOptimizerState) {
      weightedAverage(shared, returned, results.map((r) => r.count));
    } else {
      const own = this.rankVelocities!;
      for (let r = 0; r < own.length; r++) own[r]!.set(returned[r]!);
    }
  }

  /** For a checkpoint: the ranks' own velocities, when they are kept apart. */
  savedVelocities(): Float32Array[] | undefined {
    return this.rankVelocities === null ? undefined : this.rankVelocities;
  }
}
