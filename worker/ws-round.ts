/**
 * A WebSocket worker's answer to a `round` message (coordinator/ws-round.ts builds it): read and
 * check the rank's shards and velocity, run the round (local-round.ts), and reply with the
 * weighted delta in place of a gradient sum, and the velocity the round ended with. The worker
 * keeps nothing of a round but its buffers: all it needs comes with the message.
 */
import type { LabelledImages } from '../src/data/idx.js';
import type { LocalRound } from '../src/optim/local-sgd.js';
import { readInto, type DecodedFrame, type Section } from '../src/protocol/codec.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { checkFinite, type RoundMsg, type SetupMsg } from '../src/protocol/messages.js';
import { ErrorFeedbackEncoder } from '../src/protocol/wire-format.js';
import type { ShardComputer } from './compute.js';
import { LocalRoundRunner } from './local-round.js';

export interface RoundReply {
  sections: Section[];
  envelope: (copyMs: number) => Record<string, unknown>;
}

export class RoundWorker {
  private readonly runner: LocalRoundRunner;
  private readonly velocity: Float32Array;
  private indices = new Uint32Array(0);
  private pixels = new Uint8Array(0);
  private labels = new Uint8Array(0);
  /**
   * 16-bit wire: the deltas' own error-feedback residual. A residual belongs to the stream it
   * was carried in: the gradients' residual is in gradient units (the coordinator scales it by
   * η/m), a delta's moves the parameters as it is, so one left by a per-step epoch must not
   * leak into the first round after it.
   */
  private readonly deltaEncoder: ErrorFeedbackEncoder | null;

  constructor(private readonly setup: SetupMsg, private readonly computer: ShardComputer) {
    this.runner = new LocalRoundRunner(computer);
    this.velocity = computer.kernels.alloc(setup.layoutSize);
    this.deltaEncoder = setup.wire === 'fp32' ? null : new ErrorFeedbackEncoder(setup.wire, setup.layoutSize);
  }

  /** Runs rank msg.rank's round from `params` (already read and checked); `t0` is when the frame arrived. */
  answer(msg: RoundMsg, frame: DecodedFrame, params: Float32Array, train: LabelledImages | null, t0: number): RoundReply {
    const s = this.setup;
    const n = msg.count;
    let velocities: Float32Array[] | null = null;
    if (msg.momentum > 0) {
      const v = readInto(frame, 'velocity', this.velocity, s.layoutSize);
      checkFinite('velocity', v, this.computer.kernels);
      // the runner takes one velocity per rank of the world; this worker has only msg.rank's
      velocities = new Array<Float32Array>(msg.world).fill(v);
    } else if (frame.sections.has('velocity')) {
      throw new ProtocolError('DPT_ERR_SHAPE', `round ${msg.step} carries a velocity but has no momentum`);
    }
    const round: LocalRound = {
      batches: msg.batches, etas: msg.etas, momentum: msg.momentum, weightDecay: msg.weightDecay, trainSize: msg.trainSize, velocities,
    };
    let sums;
    if (s.data === 'local') {
      if (this.indices.length < n) this.indices = new Uint32Array(n);
      const own = readInto(frame, 'indices', this.indices, n);
      for (let i = 0; i < own.length; i++) {
        if (own[i]! >= s.trainCount) throw new ProtocolError('DPT_ERR_SHAPE', `index ${own[i]} is beyond the ${s.trainCount} training images`);
      }
      const decodeMs = performance.now() - t0;
      sums = { ...this.runner.runOwn(params, train!, own, round, msg.rank, msg.world), decodeMs };
    } else {
      const D = s.spec.sizes[0]!;
      if (this.labels.length < n) {
        this.pixels = new Uint8Array(n * D);
        this.labels = new Uint8Array(n);
      }
      const px = readInto(frame, 'pixels', this.pixels, n * D);
      const lb = readInto(frame, 'labels', this.labels, n);
      const K = s.spec.sizes.at(-1)!;
      for (let i = 0; i < lb.length; i++) {
        if (lb[i]! >= K) throw new ProtocolError('DPT_ERR_SHAPE', `label ${lb[i]} is not one of the ${K} classes`);
      }
      const decodeMs = performance.now() - t0;
      sums = { ...this.runner.runShipped(params, px, lb, round, msg.rank, msg.world), decodeMs };
    }
    // 16-bit: the delta divided by the count, as a gradient sum is: n·(p₀ − p)/n = p₀ − p, the
    // rank's change of parameters, whatever n (the coordinator multiplies back)
    const t1 = performance.now();
    const deltaSection: Section = this.deltaEncoder === null
      ? ['delta', sums.delta]
      : this.deltaEncoder.section('delta', `the parameter change of round ${msg.step}`, sums.delta, Math.max(1, sums.count));
    const roundMs = performance.now() - t1;
    const sections: Section[] = [deltaSection];
    if (sums.velocity !== null) sections.push(['velocity', sums.velocity]);
    return {
      sections,
      envelope: (copyMs) => ({
        type: 'delta', step: msg.step, count: sums.count, loss: sums.loss,
        timing: { loadMs: sums.loadMs, computeMs: sums.computeMs, decodeMs: sums.decodeMs, encodeMs: roundMs + copyMs },
      }),
    };
  }
}
