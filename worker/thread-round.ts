/**
 * A pool thread's part of a local-SGD round of the thread group: the round the coordinator
 * published in shared memory (thread-memory.ts), run by a LocalRoundRunner on the thread's own
 * engine buffers. The weighted delta goes to the rank's gradient slot, so the coordinator adds
 * it in rank order like a gradient sum, and the final velocity to the rank's velocity slot.
 */
import type { LabelledImages } from '../src/data/idx.js';
import { roundExamples } from '../src/optim/local-sgd.js';
import type { ShardComputer } from './compute.js';
import { LocalRoundRunner, type LocalRoundSums } from './local-round.js';
import { gradSlot, readRound, velocitySlot, type ThreadMemory } from './thread-memory.js';

export class ThreadRound {
  private readonly runner: LocalRoundRunner;
  /** every rank's velocity slot (the runner picks this rank's); null without slots */
  private readonly velocities: Float32Array[] | null;

  constructor(private readonly m: ThreadMemory, private readonly train: LabelledImages, private readonly rank: number, computer: ShardComputer) {
    this.runner = new LocalRoundRunner(computer);
    this.velocities = m.velocities === null ? null : Array.from({ length: m.world }, (_, r) => velocitySlot(m, r));
  }

  /** Runs this rank through the published round of `steps` steps from `start` (the thread's copy of the parameters). */
  run(start: Float32Array, steps: number): LocalRoundSums {
    const round = readRound(this.m, steps, this.velocities);
    const indices = this.m.indices.subarray(0, roundExamples(round));
    return this.runner.run(start, this.train, indices, round, this.rank, this.m.world);
  }

  /** Hands the round's results to the coordinator: the delta to the gradient slot, the velocity to the velocity slot. */
  writeBack(sums: LocalRoundSums): void {
    gradSlot(this.m, this.rank).set(sums.delta);
    if (sums.velocity !== null) velocitySlot(this.m, this.rank).set(sums.velocity);
  }
}
