/**
 * Test helper: a hand client (ws-hand-client.ts) that takes a rank and answers rounds of local
 * SGD honestly, with LocalRoundRunner on the indices and velocity it was sent (--data local, the
 * test's training set, momentum), after `delayMs` each — until the round that starts at
 * `badStep`, where it calls `bad` instead and stops answering.
 */
import type { LabelledImages } from '../../src/data/idx.js';
import type { LocalRound } from '../../src/optim/local-sgd.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { layoutFor } from '../../src/model/spec.js';
import { readInto } from '../../src/protocol/codec.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { ShardComputer } from '../../worker/compute.js';
import { LocalRoundRunner } from '../../worker/local-round.js';
import { HandClient } from './ws-hand-client.js';

export type BadReply = (c: HandClient, step: number, delta: Float32Array, velocity: Float32Array, count: number) => void;

export const deltaEnvelope = (step: number, count: number, loss = 1) => ({ type: 'delta', step, count, loss, timing: { loadMs: 0, computeMs: 0, decodeMs: 0, encodeMs: 0 } });

export async function roundClient(url: string, token: string, a: { spec: NetworkSpec; train: LabelledImages; maxShard: number; delayMs?: number; badStep?: number; bad?: BadReply }): Promise<HandClient> {
  const c = await HandClient.connect(url);
  const setup = await c.hello(token);
  c.send({ type: 'ready', layoutHash: setup!.envelope.layoutHash, dataDigest: setup!.envelope.dataDigest, kernels: 'js' });
  const size = layoutFor(a.spec).size;
  const runner = new LocalRoundRunner(new ShardComputer(a.spec, createJsKernels(), a.maxShard));
  const params = new Float32Array(size);
  const velocity = new Float32Array(size);
  for (;;) {
    const f = await c.next();
    if (f === null || f.envelope.type !== 'round') return c;
    const e = f.envelope as Record<string, number & number[]>;
    readInto(f, 'params', params, size);
    const own = readInto(f, 'indices', new Uint32Array(e.count), e.count);
    const round: LocalRound = {
      batches: e.batches, etas: e.etas, momentum: e.momentum, weightDecay: e.weightDecay, trainSize: e.trainSize,
      velocities: new Array<Float32Array>(e.world).fill(readInto(f, 'velocity', velocity, size)),
    };
    const s = runner.runOwn(params, a.train, own, round, e.rank, e.world);
    if (e.step === a.badStep) {
      a.bad!(c, e.step, s.delta, s.velocity!, s.count);
      return c;
    }
    if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
    c.send(deltaEnvelope(e.step, s.count, s.loss), [['delta', s.delta], ['velocity', s.velocity!]]);
  }
}
