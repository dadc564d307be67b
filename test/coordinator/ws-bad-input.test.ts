/**
 * Bad input from a real socket: each broken message is refused with its stable code (in an
 * error frame and as the close code), only that connection closes, and training with the healthy
 * workers goes on undisturbed. Bad replies to a round of local SGD are refused like bad gradients.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { maxAbsDiff, runSteps, type StepsPlan } from '../../coordinator/equivalence.js';
import { WorkerError } from '../../coordinator/worker-group.js';
import { WsGroup } from '../../coordinator/ws-group.js';
import { slice } from '../../src/data/mnist.js';
import { layoutFor } from '../../src/model/spec.js';
import { FRAME_OVERHEAD, readInto, encodeFrame } from '../../src/protocol/codec.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { maxWorkerFrame, PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { ShardComputer } from '../../worker/compute.js';
import { productLocalSgd, type ReferencePlan } from './local-sgd-suite.js';
import { deltaEnvelope, roundClient, type BadReply } from './ws-round-client.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';
import { HandClient } from './ws-hand-client.js';
import { TEST_TOKEN, wsGroupWithWorkers, type WsTestGroup } from './ws-workers.js';

const train = slice(realMnist().train, 0, 1009);
const layout = layoutFor(NIELSEN);
const open: WsTestGroup[] = [];
afterAll(async () => {
  await Promise.all(open.map((g) => g.close()));
});

function plan(steps: number): StepsPlan {
  const { network, params } = seededNetwork(NIELSEN, 11);
  return { network, initialParams: params, train, batch: 10, steps, orderSeed: 5, shuffle: true, sgd: { eta: 3, momentum: 0, weightDecay: 0 } };
}

/** A client that passes the handshake honestly (and so takes a rank if one is free). */
async function joinedClient(url: string, autoPong = true): Promise<HandClient> {
  const c = await HandClient.connect(url, { autoPong });
  const setup = await c.hello(TEST_TOKEN);
  c.send({ type: 'ready', layoutHash: setup!.envelope.layoutHash, dataDigest: setup!.envelope.dataDigest, kernels: 'js' });
  return c;
}

type Attack = (url: string) => Promise<{ code: unknown; closeCode: number; closeReason: string }>;

const atTheDoor: Record<string, [string, Attack]> = {
  'a wrong protocol version': ['DPT_ERR_VERSION', async (url) => {
    const c = await HandClient.connect(url);
    await c.hello(TEST_TOKEN, PROTOCOL_VERSION + 1);
    return c.refusal();
  }],
  'a bad token': ['DPT_ERR_AUTH', async (url) => {
    const c = await HandClient.connect(url);
    await c.hello('not-the-token');
    return c.refusal();
  }],
  'a wrong layout hash': ['DPT_ERR_LAYOUT_MISMATCH', async (url) => {
    const c = await HandClient.connect(url);
    const setup = await c.hello(TEST_TOKEN);
    c.send({ type: 'ready', layoutHash: 'deadbeef', dataDigest: setup!.envelope.dataDigest, kernels: 'js' });
    return c.refusal();
  }],
  'garbage bytes': ['DPT_ERR_BAD_FRAME', async (url) => {
    const c = await HandClient.connect(url);
    await c.expect('challenge');
    c.sendRaw(Buffer.from([0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x42, 0x99]));
    return c.refusal();
  }],
  'a truncated frame': ['DPT_ERR_BAD_FRAME', async (url) => {
    const c = await HandClient.connect(url);
    await c.expect('challenge');
    const whole = encodeFrame({ type: 'hello', version: PROTOCOL_VERSION, proof: 'x', nonce: 'y', host: 'h', pid: 1 });
    c.sendRaw(whole.subarray(0, whole.length - 7));
    return c.refusal();
  }],
  'a text frame': ['DPT_ERR_BAD_FRAME', async (url) => {
    const c = await HandClient.connect(url);
    await c.expect('challenge');
    c.sendRaw('{"type":"hello"}');
    return c.refusal();
  }],
  'a frame over maxPayload': ['DPT_ERR_TOO_LARGE', async (url) => {
    const c = await HandClient.connect(url);
    await c.expect('challenge');
    c.sendRaw(new Uint8Array(maxWorkerFrame(layout.size) + 1));
    return c.refusal();
  }],
  'a worker beyond the world size': ['DPT_ERR_WORLD_FULL', async (url) => (await joinedClient(url)).refusal()],
};

describe('ws: bad input at the door is refused while two healthy workers train', () => {
  it('refuses each with its code and the run still equals single-node', async () => {
    const p = plan(300);
    const reference = await runSteps(new InProcessGroup(NIELSEN, createJsKernels(), train, 1, 10), p);
    const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: 10, data: 'local' });
    open.push(group);
    const url = group.inner.url;
    let trainingDone = false;
    const training = runSteps(group, p).finally(() => { trainingDone = true; });
    const outcomes = await Promise.all(Object.entries(atTheDoor).map(async ([name, [code, attack]]) => {
      const got = await attack(url);
      return { name, code, got, duringTraining: !trainingDone };
    }));
    const distributed = await training;
    for (const o of outcomes) {
      expect(o.duringTraining, `${o.name} was refused while the healthy workers trained`).toBe(true);
      // ws answers an oversized frame itself, with close code 1009, before we can say more
      if (o.code === 'DPT_ERR_TOO_LARGE') expect(o.got.closeCode, o.name).toBe(1009);
      else expect({ name: o.name, code: o.got.code, close: o.got.closeCode, reason: o.got.closeReason })
        .toEqual({ name: o.name, code: o.code, close: ERROR_CODES[o.code as keyof typeof ERROR_CODES], reason: o.code });
    }
    expect(maxAbsDiff(reference, distributed)).toBeLessThanOrEqual(1e-5);
    expect(group.inner.joined).toBe(2);
    const refusals = group.lines.filter((l) => l.includes('refused'));
    for (const code of ['DPT_ERR_VERSION', 'DPT_ERR_AUTH', 'DPT_ERR_LAYOUT_MISMATCH', 'DPT_ERR_BAD_FRAME', 'DPT_ERR_WORLD_FULL']) {
      expect(refusals.some((l) => l.includes(code)), code).toBe(true);
    }
  });
});

/**
 * A hand client that holds rank 1 and answers honestly (real gradients from ShardComputer on
 * the same data) until `badStep`, where it sends `bad(...)` instead.
 */
async function rankHolder(url: string, badStep: number, bad: (c: HandClient, step: number, grads: Float32Array, count: number) => void) {
  const c = await joinedClient(url);
  const computer = new ShardComputer(NIELSEN, createJsKernels(), 5);
  const params = new Float32Array(layout.size);
  const indices = new Uint32Array(5);
  for (;;) {
    const f = await c.next();
    if (f === null || f.envelope.type !== 'step') return c;
    const step = f.envelope.step as number;
    const count = f.envelope.count as number;
    readInto(f, 'params', params, layout.size);
    const s = computer.computeIndexed(params, train, readInto(f, 'indices', indices, count));
    if (step === badStep) {
      bad(c, step, s.grads, count);
      return c;
    }
    c.send({ type: 'grads', step, count, loss: s.loss, timing: { loadMs: 0, computeMs: 0, decodeMs: 0, encodeMs: 0 } }, [['grads', s.grads]]);
  }
}

const grads = (step: number, count: number, loss = 1) => ({ type: 'grads', step, count, loss, timing: { loadMs: 0, computeMs: 0, decodeMs: 0, encodeMs: 0 } });

/** Each bad reply, the code it is refused with, and the close code when not that code's own (ws answers an oversized frame itself, with 1009). */
const inStep: Record<string, [string, (c: HandClient, step: number, g: Float32Array, count: number) => void, number?]> = {
  'a gradient of the wrong length': ['DPT_ERR_SHAPE', (c, step, g, count) => c.send(grads(step, count), [['grads', g.subarray(0, g.length - 1)]])],
  'NaN in a gradient': ['DPT_ERR_NOT_FINITE', (c, step, g, count) => {
    const bad = g.slice();
    bad[1234] = NaN;
    c.send(grads(step, count), [['grads', bad]]);
  }],
  'a stale step id': ['DPT_ERR_STALE_STEP', (c, step, g, count) => c.send(grads(step - 1, count), [['grads', g]])],
  'a truncated gradient frame': ['DPT_ERR_BAD_FRAME', (c, step, g, count) => {
    const whole = encodeFrame(grads(step, count), [['grads', g]]);
    c.sendRaw(whole.subarray(0, whole.length - 100));
  }],
  'garbage instead of a gradient': ['DPT_ERR_BAD_FRAME', (c) => c.sendRaw(Buffer.alloc(4000, 0xab))],
  'a gradient frame over maxPayload': ['DPT_ERR_TOO_LARGE', (c, step, g, count) => {
    c.send(grads(step, count), [['grads', g], ['padding', new Uint8Array(maxWorkerFrame(layout.size) - g.byteLength)]]);
  }, 1009],
  // within maxPayload, which admits a round's delta and velocity, but longer than a step's reply
  'a gradient frame longer than a gradient': ['DPT_ERR_TOO_LARGE', (c, step, g, count) => {
    c.send(grads(step, count), [['grads', g], ['padding', new Uint8Array(FRAME_OVERHEAD + 64)]]);
  }],
};

describe('ws: a bad reply from a worker holding a rank', () => {
  for (const [name, [code, bad, closeCode]] of Object.entries(inStep)) {
    it(`${name}: with --min-workers 2 that step fails with ${code} naming rank 1; the healthy worker stays connected`, async () => {
      const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: 10, data: 'local', processes: 1, waitFor: 1, minWorkers: 2 });
      open.push(group);
      const attacker = rankHolder(group.inner.url, 3, bad);
      await group.inner.waitForWorkers(10_000);
      const run = runSteps(group, plan(10));
      const err = await run.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkerError);
      expect({ code: (err as WorkerError).code, rank: (err as WorkerError).rank, step: (err as WorkerError).step }).toEqual({ code, rank: 1, step: 3 });
      const c = await attacker;
      const refusal = await c.refusal();
      expect(refusal.closeCode).toBe(closeCode ?? ERROR_CODES[code as keyof typeof ERROR_CODES]);
      // rank 0 (the real worker process) answered step 3 and is still there
      expect(group.inner.joined).toBe(1);
      expect(group.workers.children[0]!.exitCode).toBeNull();
      await group.close();
      expect(group.workers.children[0]!.exitCode).toBe(0);
    });
  }
});

const inRound: Record<string, [string, BadReply]> = {
  'a gradient in place of a delta': ['DPT_ERR_PROTOCOL', (c, step, d, _v, count) => c.send(grads(step, count), [['grads', d]])],
  'a delta without the velocity of a round with momentum': ['DPT_ERR_SHAPE', (c, step, d, _v, count) => c.send(deltaEnvelope(step, count), [['delta', d]])],
  'NaN in the velocity': ['DPT_ERR_NOT_FINITE', (c, step, d, v, count) => {
    const bad = v.slice();
    bad[42] = NaN;
    c.send(deltaEnvelope(step, count), [['delta', d], ['velocity', bad]]);
  }],
  'a count other than the rank\'s examples of the round': ['DPT_ERR_SHAPE', (c, step, d, v, count) => c.send(deltaEnvelope(step, count + 1), [['delta', d], ['velocity', v]])],
};

describe('ws: a bad reply to a round of local SGD', () => {
  const set = slice(realMnist().train, 0, 301);
  for (const [name, [code, bad]] of Object.entries(inRound)) {
    it(`${name}: with --min-workers 2 the round fails with ${code} naming rank 1; the healthy worker stays connected`, async () => {
      const group = await wsGroupWithWorkers({ spec: NIELSEN, train: set, world: 2, maxBatch: 12, data: 'local', processes: 1, waitFor: 1, minWorkers: 2 });
      open.push(group);
      const attacker = roundClient(group.inner.url, TEST_TOKEN, { spec: NIELSEN, train: set, maxShard: 6, badStep: 10, bad });
      await group.inner.waitForWorkers(10_000);
      const { network, params } = seededNetwork(NIELSEN, 11);
      const p: ReferencePlan = {
        every: 5, momentum: 0.9, weightDecay: 5, averageOptimizerState: false,
        network, initial: params, train: set, world: 2, batch: 12, steps: 20, eta: 0.5, orderSeed: 5,
      };
      const err = await productLocalSgd(group, p).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkerError);
      expect({ code: (err as WorkerError).code, rank: (err as WorkerError).rank, step: (err as WorkerError).step }).toEqual({ code, rank: 1, step: 10 });
      const refusal = await (await attacker).refusal();
      expect({ code: refusal.code, close: refusal.closeCode }).toEqual({ code, close: ERROR_CODES[code as keyof typeof ERROR_CODES] });
      expect(group.inner.joined).toBe(1);
      expect(group.workers.children[0]!.exitCode).toBeNull();
      await group.close();
    });
  }
});

describe('ws: heartbeat', () => {
  it('terminates a rank holder that stops answering pings, keeps the one that answers, and (--min-workers 2) the next step names the lost rank', async () => {
    const group = await WsGroup.listen({
      spec: NIELSEN, train, world: 2, maxBatch: 10, kernels: 'js', data: 'local', token: TEST_TOKEN, heartbeatMs: 200, minWorkers: 2,
    });
    try {
      const healthy = await joinedClient(group.url);
      const stuck = await joinedClient(group.url, false);
      await group.waitForWorkers(10_000);
      const closed = await stuck.closed;
      expect(closed.code).toBe(1006); // terminated: no close frame
      expect(group.joined).toBe(1);
      expect(healthy.socket.readyState).toBe(healthy.socket.OPEN);
      const { params } = seededNetwork(NIELSEN, 11);
      const err = await group.computeStep({ step: 0, params, indices: Uint32Array.from([1, 2, 3]) }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkerError);
      expect({ code: (err as WorkerError).code, rank: (err as WorkerError).rank }).toEqual({ code: 'DPT_ERR_WORKER_TIMEOUT', rank: 1 });
      healthy.close();
    } finally {
      await group.close();
    }
  });
});
