/**
 * Hostile input, property-based (fast-check): thousands of random and mutated frames thrown at a
 * live coordinator over real sockets — before authentication (junk, text, mutated hellos), during
 * the handshake with the right token (mutated readies), and as the holder of a rank (bad replies
 * to a real step, silence) — while two real worker processes train. The coordinator must not
 * crash or hang, the healthy workers must keep training (and their result must equal the same
 * steps in-process, bit for bit), connections must all be released, and memory must stay bounded.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { maxAbsDiff, runSteps, type StepsPlan } from '../../coordinator/equivalence.js';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { trainStep } from '../../coordinator/trainer.js';
import { batchIndices, epochPermutation, stepsPerEpoch } from '../../src/data/batches.js';
import { slice } from '../../src/data/mnist.js';
import { Sgd } from '../../src/optim/sgd.js';
import { proofFor } from '../../src/protocol/auth.js';
import { decodeFrame, encodeFrame } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { Rng } from '../../src/tensor/rng.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';
import { TEST_TOKEN, wsGroupWithWorkers, type WsTestGroup } from './ws-workers.js';

const train = slice(realMnist().train, 0, 1009);
const open: WsTestGroup[] = [];
afterAll(async () => {
  for (const g of open) await g.close();
});

/** Byte-level damage to a valid frame: overwritten bytes, a cut, extra bytes at the end. */
interface Damage { flips: [number, number][]; cut: number | null; extra: Uint8Array }
const damage: fc.Arbitrary<Damage> = fc.record({
  flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
  cut: fc.option(fc.nat(), { nil: null }),
  extra: fc.uint8Array({ maxLength: 64 }),
});
function apply(frame: Uint8Array, d: Damage): Buffer {
  const b = Buffer.from(frame);
  for (const [pos, value] of d.flips) b[pos % b.length] = value;
  const cut = d.cut === null ? b : b.subarray(0, d.cut % b.length);
  return Buffer.concat([cut, d.extra]);
}

type BadReply = 'wrong-step' | 'wrong-count' | 'nan-loss' | 'short-grads' | 'nan-grads' | 'truncated' | 'text' | 'close' | 'silent';
type Attack =
  | { kind: 'junk'; bytes: Uint8Array }
  | { kind: 'text'; text: string }
  | { kind: 'silent' }
  | { kind: 'hello'; damage: Damage; goodProof: boolean }
  | { kind: 'hello-fields'; fields: Record<string, unknown> }
  | { kind: 'ready'; damage: Damage }
  | { kind: 'rank'; reply: BadReply };

const attack: fc.Arbitrary<Attack> = fc.oneof(
  fc.record({ kind: fc.constant('junk' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 3000 }) }),
  fc.record({ kind: fc.constant('text' as const), text: fc.string({ maxLength: 200 }) }),
  fc.record({ kind: fc.constant('silent' as const) }),
  fc.record({ kind: fc.constant('hello' as const), damage, goodProof: fc.boolean() }),
  fc.record({ kind: fc.constant('hello-fields' as const), fields: fc.dictionary(fc.constantFrom('type', 'version', 'proof', 'nonce', 'host', 'pid', 'sections', 'x'), fc.anything({ maxDepth: 2 }), { maxKeys: 4 }) }),
  fc.record({ kind: fc.constant('ready' as const), damage }),
  fc.record({ kind: fc.constant('rank' as const), reply: fc.constantFrom<BadReply>('wrong-step', 'wrong-count', 'nan-loss', 'short-grads', 'nan-grads', 'truncated', 'text', 'close', 'silent') }),
);

const LAYOUT = seededNetwork(NIELSEN, 11).network.layout.size;
const timing = { loadMs: 0, computeMs: 0, decodeMs: 0, encodeMs: 0 };

/**
 * One hostile client; resolves when the server closed it, or when the client gives up (60 ms; a
 * rank holder waits up to 300 ms for its step). Never rejects.
 */
function runAttack(url: string, a: Attack, ms = a.kind === 'rank' ? 300 : 60): Promise<void> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    const done = setTimeout(() => socket.terminate(), ms);
    socket.on('error', () => {});
    socket.on('close', () => { clearTimeout(done); resolve(); });
    socket.on('open', () => {
      if (a.kind === 'junk') socket.send(a.bytes);
      else if (a.kind === 'text') socket.send(a.text);
    });
    let setup: Record<string, unknown> | null = null;
    socket.on('message', (data: Buffer) => {
      const f = decodeFrame(data); // the server sends only valid frames: a throw here fails the test
      const env = f.envelope;
      if (env.type === 'challenge') {
        if (a.kind === 'hello' || a.kind === 'hello-fields' || a.kind === 'ready' || a.kind === 'rank') {
          const good = { type: 'hello', version: PROTOCOL_VERSION, proof: proofFor(TEST_TOKEN, 'worker', String(env.nonce)), nonce: 'ab'.repeat(16), host: 'fuzz', pid: 1 };
          if (a.kind === 'hello') socket.send(apply(encodeFrame(a.goodProof ? good : { ...good, proof: 'f'.repeat(64) }), a.damage));
          else if (a.kind === 'hello-fields') socket.send(encodeFrame({ ...good, ...a.fields }));
          else socket.send(encodeFrame(good));
        }
      } else if (env.type === 'setup') {
        setup = env;
        const ready = encodeFrame({ type: 'ready', layoutHash: env.layoutHash, dataDigest: env.dataDigest, kernels: 'js' });
        if (a.kind === 'ready') socket.send(apply(ready, a.damage));
        else if (a.kind === 'rank') socket.send(ready);
      } else if (env.type === 'step' && a.kind === 'rank' && setup !== null) {
        const step = env.step as number;
        const count = env.count as number;
        const g = new Float32Array(LAYOUT);
        const reply = (e: Record<string, unknown>, grads: Float32Array = g) => encodeFrame({ type: 'grads', step, count, loss: 1, timing, ...e }, [['grads', grads]]);
        switch (a.reply) {
          case 'wrong-step': socket.send(reply({ step: step + 1 })); break;
          case 'wrong-count': socket.send(reply({ count: count + 1 })); break;
          case 'nan-loss': socket.send(reply({ loss: NaN })); break;
          case 'short-grads': socket.send(reply({}, g.subarray(1))); break;
          case 'nan-grads': g[7] = NaN; socket.send(reply({})); break;
          case 'truncated': { const r = reply({}); socket.send(r.subarray(0, r.length - 3)); break; }
          case 'text': socket.send('grads'); break;
          case 'close': socket.close(); break;
          case 'silent': break; // dropped when this client gives up (or by --step-timeout)
        }
      }
    });
  });
}

/** Trains on the group until stop() says so; returns the parameters and how many steps ran. */
async function trainUntil(group: WsTestGroup, stop: () => boolean): Promise<{ params: Float32Array; steps: number }> {
  const { network, params } = seededNetwork(NIELSEN, 11);
  const sgd = new Sgd(network.layout, network.kernels, { eta: 3, momentum: 0, weightDecay: 0, trainSize: train.count });
  const gradSum = network.allocParams();
  const rng = new Rng(5);
  const perEpoch = stepsPerEpoch(train.count, 10);
  let perm = epochPermutation(train.count, rng, true);
  let step = 0;
  for (; !stop(); step++) {
    // paced, so the replay stays short; the attackers get the event loop between steps too
    await new Promise((r) => setTimeout(r, 2));
    const s = step % perEpoch;
    if (s === 0 && step > 0) perm = epochPermutation(train.count, rng, true);
    await trainStep({ network, sgd, group, params }, gradSum, step, batchIndices(perm, s, 10));
  }
  return { params, steps: step };
}

function replayPlan(steps: number): StepsPlan {
  const { network, params } = seededNetwork(NIELSEN, 11);
  return { network, initialParams: params, train, batch: 10, steps, orderSeed: 5, shuffle: true, sgd: { eta: 3, momentum: 0, weightDecay: 0 } };
}

describe('ws coordinator under hostile input (fast-check)', () => {
  it('survives thousands of random and mutated frames while two healthy workers train; the result equals the same steps with no attacker', async () => {
    // 3 ranks, 2 healthy processes: the third rank is there for attackers to take and lose
    const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 3, maxBatch: 10, data: 'local', processes: 2, waitFor: 2, stepTimeoutMs: 10_000 });
    open.push(group);
    const url = group.inner.url;
    const healthy = group.workers.children;
    const before = process.memoryUsage();
    let fuzzing = true;
    const training = trainUntil(group, () => !fuzzing);
    let inputs = 0;
    let stepsSeen = 0;
    const kinds: Record<string, number> = {};
    const t0 = Date.now();
    await fc.assert(fc.asyncProperty(fc.array(attack, { minLength: 10, maxLength: 10 }), async (batch) => {
      await Promise.all(batch.map((a) => runAttack(url, a)));
      inputs += batch.length;
      for (const a of batch) kinds[a.kind] = (kinds[a.kind] ?? 0) + 1;
      return true;
    }), { numRuns: 250, seed: 20261125, endOnFailure: true });
    fuzzing = false;
    const { params, steps } = await training;
    stepsSeen = steps;
    const seconds = (Date.now() - t0) / 1000;
    // every connection the attackers opened is released (the two healthy workers remain)
    for (let i = 0; i < 100 && group.inner.connectionCount > 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(group.inner.connectionCount).toBe(2);
    const after = process.memoryUsage();
    console.log(`fuzz: ${inputs} hostile inputs (${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}) in ${seconds.toFixed(1)} s; ${stepsSeen} steps trained meanwhile; ` +
      `${group.inner.lostWorkers} attacker rank holders dropped, ${group.inner.reassignedShards} shards re-assigned; ` +
      `heap ${(before.heapUsed / 2 ** 20).toFixed(0)} -> ${(after.heapUsed / 2 ** 20).toFixed(0)} MiB, rss ${(before.rss / 2 ** 20).toFixed(0)} -> ${(after.rss / 2 ** 20).toFixed(0)} MiB`);
    expect(inputs).toBeGreaterThanOrEqual(2500);
    expect(stepsSeen).toBeGreaterThan(50);
    expect(healthy.every((c) => c.exitCode === null && c.signalCode === null)).toBe(true);
    expect(group.inner.joined).toBe(2);
    // bounded memory: generous, since the heap is not collected on demand here
    expect(after.heapUsed - before.heapUsed).toBeLessThan(200 * 2 ** 20);
    expect(after.rss - before.rss).toBeLessThan(400 * 2 ** 20);
    // the healthy workers' training was not disturbed: same parameters as the same steps in-process over 3 shards
    const reference = await runSteps(new InProcessGroup(NIELSEN, createJsKernels(), train, 3, 10), replayPlan(stepsSeen));
    expect(maxAbsDiff(params, reference)).toBe(0);
    await group.close();
    expect(healthy.every((c) => c.exitCode === 0)).toBe(true);
  }, 120_000);

  it('a flood of silent connections is capped at the handshake limit; the rest are turned away and training goes on', async () => {
    const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: 10, data: 'local' });
    open.push(group);
    let flooding = true;
    const training = trainUntil(group, () => !flooding);
    const closes: number[] = [];
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
      const s = new WebSocket(group.inner.url, { perMessageDeflate: false });
      const t = setTimeout(() => s.terminate(), 1000);
      s.on('error', () => {});
      s.on('close', (code) => { clearTimeout(t); closes.push(code); resolve(); });
    })));
    flooding = false;
    const { steps } = await training;
    const turnedAway = closes.filter((c) => c === 1013).length;
    expect(turnedAway).toBeGreaterThanOrEqual(200 - 16);
    expect(group.lines.some((l) => /turned away .*limit 16/.test(l))).toBe(true);
    expect(steps).toBeGreaterThan(0);
    expect(group.inner.joined).toBe(2);
  }, 60_000);
});
