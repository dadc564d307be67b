/**
 * The messages of the dpt WebSocket protocol (docs/protocol.md), one validator per message that
 * arrives from the wire. A validator checks every field before anything uses it — type, range,
 * finiteness, and lengths against what this side knows (layout, shard size, data set) — and
 * throws a ProtocolError with a stable code naming the field.
 *
 *   coordinator → worker: challenge, setup, step (+ params, indices | pixels + labels),
 *                         round (+ params, indices | pixels + labels, velocity with momentum), stop, error
 *   worker → coordinator: hello, ready, grads (+ grads), delta (+ delta, velocity with momentum), error
 */
import { DATA_MODES, KERNEL_CHOICES, WIRE_FORMATS, type DataMode, type KernelChoice, type WireFormat } from '../config.js';
import type { NetworkSpec } from '../model/spec.js';
import { COSTS, HIDDEN_ACTIVATIONS } from '../model/spec.js';
import { FRAME_OVERHEAD, type DecodedFrame } from './codec.js';
import type { Kernels } from '../tensor/kernels.js';
import { allFiniteReference } from '../tensor/kernels-js.js';
import { ProtocolError, isErrorCode, type ErrorCode } from './errors.js';
import { rankExamples } from '../optim/local-sgd.js';
import { wireElementBytes } from './wire-format.js';

/**
 * 3: setup carries the wire format, and grads may be 16-bit means (docs/protocol.md).
 * 4: round and delta, one exchange per rank for a whole round of local SGD.
 */
export const PROTOCOL_VERSION = 4;

/**
 * The largest frame a worker sends, the coordinator's maxPayload: a round's delta and its
 * velocity, both float32 at most, and the envelope.
 */
export function maxWorkerFrame(layoutSize: number): number {
  return 2 * layoutSize * 4 + FRAME_OVERHEAD;
}

/**
 * The largest reply to the request outstanding on a connection: its grads or delta in the wire
 * format, the velocity (float32) when a round with momentum asked for it, and the envelope.
 * Tighter than maxPayload, which must admit the largest reply of any kind.
 */
export function maxReplyBytes(layoutSize: number, wire: WireFormat, velocity: boolean): number {
  return layoutSize * wireElementBytes(wire) + (velocity ? layoutSize * 4 : 0) + FRAME_OVERHEAD;
}

export type { DataMode };

export interface ChallengeMsg { type: 'challenge'; version: number; nonce: string }
export interface HelloMsg { type: 'hello'; version: number; proof: string; nonce: string; host: string; pid: number }
export interface SetupMsg {
  type: 'setup';
  version: number;
  /** the coordinator's answer to the worker's nonce */
  proof: string;
  spec: NetworkSpec;
  layoutHash: string;
  layoutSize: number;
  /** the largest shard a step will send */
  maxShard: number;
  kernels: KernelChoice;
  data: DataMode;
  /** local: the first trainCount of the 50,000 training images, with this sha256 */
  trainCount: number;
  dataDigest: string | null;
  /** largest frame the coordinator accepts */
  maxPayload: number;
  /** the format of params (coordinator → worker) and grads (worker → coordinator) sections */
  wire: WireFormat;
}
export interface ReadyMsg { type: 'ready'; layoutHash: string; dataDigest: string | null; kernels: string }
export interface StepMsg { type: 'step'; step: number; count: number }
export interface WorkerTimingMsg { loadMs: number; computeMs: number; decodeMs: number; encodeMs: number }
export interface GradsMsg { type: 'grads'; step: number; count: number; loss: number; timing: WorkerTimingMsg }
/**
 * A whole round of local SGD for one rank (src/optim/local-sgd.ts): the global batch size and η
 * of each of its steps, the optimizer's other settings, which rank's shards it carries and in
 * what world, and `count`, the examples of those shards (the length of its indices or labels).
 */
export interface RoundMsg {
  type: 'round';
  step: number;
  rank: number;
  world: number;
  count: number;
  batches: number[];
  etas: number[];
  momentum: number;
  weightDecay: number;
  trainSize: number;
}
/** A rank's reply to a round: its weighted delta n·(p₀ − p) in place of a gradient sum. */
export interface DeltaMsg { type: 'delta'; step: number; count: number; loss: number; timing: WorkerTimingMsg }
export interface StopMsg { type: 'stop'; step: number | null; reason: string }
export interface ErrorMsg { type: 'error'; code: ErrorCode; message: string; step: number | null }

const MAX_STRING = 256;

function fail(code: ErrorCode, message: string): never {
  throw new ProtocolError(code, message);
}

function str(env: Record<string, unknown>, key: string, type: string): string {
  const v = env[key];
  if (typeof v !== 'string' || v.length > MAX_STRING) fail('DPT_ERR_BAD_FRAME', `${type}.${key} must be a string of at most ${MAX_STRING} characters`);
  return v;
}

function int(env: Record<string, unknown>, key: string, type: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = env[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail('DPT_ERR_BAD_FRAME', `${type}.${key} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

function finite(env: Record<string, unknown>, key: string, type: string, min = -Infinity): number {
  const v = env[key];
  if (typeof v !== 'number') fail('DPT_ERR_BAD_FRAME', `${type}.${key} must be a number, got ${typeof v}`);
  if (!Number.isFinite(v)) fail('DPT_ERR_NOT_FINITE', `${type}.${key} is ${v}`);
  if (v < min) fail('DPT_ERR_BAD_FRAME', `${type}.${key} must be >= ${min}, got ${v}`);
  return v;
}

function expectType(frame: DecodedFrame, type: string): Record<string, unknown> {
  const env = frame.envelope;
  if (env.type !== type) fail('DPT_ERR_PROTOCOL', `expected a ${type} message here, got ${String(env.type)}`);
  return env;
}

/** Version first: a peer of another version may use other fields, and deserves the right code. */
function checkVersion(env: Record<string, unknown>, type: string): number {
  const v = env.version;
  if (v !== PROTOCOL_VERSION) {
    fail('DPT_ERR_VERSION', `${type} speaks protocol version ${String(v)}, this side speaks ${PROTOCOL_VERSION}: run the same dpt version on coordinator and workers`);
  }
  return v;
}

export function parseChallenge(frame: DecodedFrame): ChallengeMsg {
  const env = expectType(frame, 'challenge');
  return { type: 'challenge', version: checkVersion(env, 'challenge'), nonce: str(env, 'nonce', 'challenge') };
}

export function parseHello(frame: DecodedFrame): HelloMsg {
  const env = expectType(frame, 'hello');
  return {
    type: 'hello', version: checkVersion(env, 'hello'), proof: str(env, 'proof', 'hello'),
    nonce: str(env, 'nonce', 'hello'), host: str(env, 'host', 'hello'), pid: int(env, 'pid', 'hello', 0),
  };
}

function parseSpec(v: unknown): NetworkSpec {
  const o = v as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null) fail('DPT_ERR_BAD_FRAME', 'setup.spec must be a map');
  const sizes = o.sizes;
  if (!Array.isArray(sizes) || sizes.length < 2 || sizes.length > 16 || !sizes.every((s) => Number.isSafeInteger(s) && s >= 1 && s <= 1 << 16)) {
    fail('DPT_ERR_BAD_FRAME', 'setup.spec.sizes must be 2 to 16 positive integers');
  }
  if (!(HIDDEN_ACTIVATIONS as readonly unknown[]).includes(o.activation)) fail('DPT_ERR_BAD_FRAME', `setup.spec.activation ${String(o.activation)} is unknown`);
  if (!(COSTS as readonly unknown[]).includes(o.cost)) fail('DPT_ERR_BAD_FRAME', `setup.spec.cost ${String(o.cost)} is unknown`);
  return { sizes: sizes as number[], activation: o.activation as NetworkSpec['activation'], cost: o.cost as NetworkSpec['cost'] };
}

export function parseSetup(frame: DecodedFrame): SetupMsg {
  const env = expectType(frame, 'setup');
  const version = checkVersion(env, 'setup');
  const kernels = env.kernels;
  if (!(KERNEL_CHOICES as readonly unknown[]).includes(kernels)) fail('DPT_ERR_BAD_FRAME', `setup.kernels ${String(kernels)} is unknown`);
  const data = env.data;
  if (!(DATA_MODES as readonly unknown[]).includes(data)) fail('DPT_ERR_BAD_FRAME', `setup.data must be local or ship, got ${String(data)}`);
  const dataDigest = env.dataDigest === null ? null : str(env, 'dataDigest', 'setup');
  if (data === 'local' && dataDigest === null) fail('DPT_ERR_BAD_FRAME', 'setup.dataDigest is required with data local');
  const wire = env.wire;
  if (!(WIRE_FORMATS as readonly unknown[]).includes(wire)) fail('DPT_ERR_BAD_FRAME', `setup.wire must be one of ${WIRE_FORMATS.join(', ')}, got ${String(wire)}`);
  return {
    type: 'setup', version, proof: str(env, 'proof', 'setup'), spec: parseSpec(env.spec),
    layoutHash: str(env, 'layoutHash', 'setup'), layoutSize: int(env, 'layoutSize', 'setup', 1, 1 << 28),
    maxShard: int(env, 'maxShard', 'setup', 1, 1 << 20), kernels: kernels as KernelChoice, data: data as DataMode,
    trainCount: int(env, 'trainCount', 'setup', 1, 1 << 24), dataDigest, maxPayload: int(env, 'maxPayload', 'setup', 1),
    wire: wire as WireFormat,
  };
}

export function parseReady(frame: DecodedFrame): ReadyMsg {
  const env = expectType(frame, 'ready');
  return {
    type: 'ready', layoutHash: str(env, 'layoutHash', 'ready'),
    dataDigest: env.dataDigest === null ? null : str(env, 'dataDigest', 'ready'), kernels: str(env, 'kernels', 'ready'),
  };
}

/** The step envelope; its sections are checked against the setup by the worker (readInto). */
export function parseStep(frame: DecodedFrame, maxShard: number): StepMsg {
  const env = expectType(frame, 'step');
  return { type: 'step', step: int(env, 'step', 'step', 0), count: int(env, 'count', 'step', 0, maxShard) };
}

/** A grads envelope, checked against the step outstanding on this connection. */
export function parseGrads(frame: DecodedFrame, expect: { step: number; count: number } | null): GradsMsg {
  return { type: 'grads', ...parseSums(frame, 'grads', 'the shard', expect) };
}

/** A delta envelope, checked against the round outstanding on this connection. */
export function parseDelta(frame: DecodedFrame, expect: { step: number; count: number } | null): DeltaMsg {
  return { type: 'delta', ...parseSums(frame, 'delta', "the rank's shards of the round", expect) };
}

/** The fields grads and delta share: which request they answer, the count it had, loss and timing. */
function parseSums(frame: DecodedFrame, type: 'grads' | 'delta', what: string, expect: { step: number; count: number } | null):
  { step: number; count: number; loss: number; timing: WorkerTimingMsg } {
  const env = expectType(frame, type);
  const step = int(env, 'step', type, 0);
  if (expect === null) fail('DPT_ERR_STALE_STEP', `${type} for step ${step} arrived but no step is outstanding on this connection`);
  if (step !== expect.step) fail('DPT_ERR_STALE_STEP', `${type} for step ${step} arrived while step ${expect.step} is outstanding`);
  const count = int(env, 'count', type, 0);
  if (count !== expect.count) fail('DPT_ERR_SHAPE', `${type}.count is ${count} but ${what} had ${expect.count} examples`);
  const loss = finite(env, 'loss', type, 0);
  const t = env.timing;
  if (typeof t !== 'object' || t === null || Array.isArray(t)) fail('DPT_ERR_BAD_FRAME', `${type}.timing must be a map`);
  const tm = t as Record<string, unknown>;
  const timing = {
    loadMs: finite(tm, 'loadMs', `${type}.timing`, 0), computeMs: finite(tm, 'computeMs', `${type}.timing`, 0),
    decodeMs: finite(tm, 'decodeMs', `${type}.timing`, 0), encodeMs: finite(tm, 'encodeMs', `${type}.timing`, 0),
  };
  return { step, count, loss, timing };
}

/** More ranks than this in a round message is not a world a worker will believe. */
const MAX_WORLD = 1 << 16;

/**
 * A round envelope, checked against the setup: every number in range, as many η as steps, each
 * of the rank's shards within maxShard (the worker's buffers), the round within one pass over the
 * training set (a round never crosses an epoch), and `count` equal to the rank's examples. Its
 * sections are checked by the worker as it reads them.
 */
export function parseRound(frame: DecodedFrame, setup: Pick<SetupMsg, 'maxShard' | 'trainCount'>): RoundMsg {
  const env = expectType(frame, 'round');
  const step = int(env, 'step', 'round', 0);
  const world = int(env, 'world', 'round', 1, MAX_WORLD);
  const rank = int(env, 'rank', 'round', 0, world - 1);
  const batches = numbers(env, 'batches', setup.trainCount);
  const etas = numbers(env, 'etas', setup.trainCount);
  if (batches.length === 0) fail('DPT_ERR_SHAPE', 'round.batches is empty: a round has at least one step');
  if (etas.length !== batches.length) fail('DPT_ERR_SHAPE', `round.etas has ${etas.length} learning rates for ${batches.length} steps`);
  let examples = 0;
  for (let j = 0; j < batches.length; j++) {
    const b = batches[j];
    if (typeof b !== 'number' || !Number.isSafeInteger(b) || b < 1 || b > setup.trainCount) {
      fail('DPT_ERR_BAD_FRAME', `round.batches[${j}] must be an integer in [1, ${setup.trainCount}], got ${String(b)}`);
    }
    const eta = etas[j];
    if (typeof eta !== 'number') fail('DPT_ERR_BAD_FRAME', `round.etas[${j}] must be a number, got ${typeof eta}`);
    if (!Number.isFinite(eta)) fail('DPT_ERR_NOT_FINITE', `round.etas[${j}] is ${eta}`);
    if (eta < 0) fail('DPT_ERR_BAD_FRAME', `round.etas[${j}] must be >= 0, got ${eta}`);
    examples += b;
  }
  if (examples > setup.trainCount) fail('DPT_ERR_SHAPE', `round.batches add up to ${examples} examples, more than the ${setup.trainCount} training images (a round stays within one epoch)`);
  for (const b of batches) {
    const shard = rankExamples([b], rank, world);
    if (shard > setup.maxShard) fail('DPT_ERR_SHAPE', `a batch of ${b} gives rank ${rank} of ${world} a shard of ${shard}, more than the setup's largest shard ${setup.maxShard}`);
  }
  const count = int(env, 'count', 'round', 0);
  const want = rankExamples(batches, rank, world);
  if (count !== want) fail('DPT_ERR_SHAPE', `round.count is ${count} but rank ${rank}'s shards of these batches hold ${want} examples`);
  const momentum = finite(env, 'momentum', 'round', 0);
  if (momentum >= 1) fail('DPT_ERR_BAD_FRAME', `round.momentum must be in [0, 1), got ${momentum}`);
  return {
    type: 'round', step, rank, world, count, batches, etas, momentum,
    weightDecay: finite(env, 'weightDecay', 'round', 0), trainSize: int(env, 'trainSize', 'round', 1),
  };
}

/** A list of at most `max` entries (each checked by the caller). */
function numbers(env: Record<string, unknown>, key: string, max: number): number[] {
  const v = env[key];
  if (!Array.isArray(v) || v.length > max) fail('DPT_ERR_BAD_FRAME', `round.${key} must be a list of at most ${max} numbers`);
  return v as number[];
}

export function parseStop(frame: DecodedFrame): StopMsg {
  const env = expectType(frame, 'stop');
  return { type: 'stop', step: env.step === null ? null : int(env, 'step', 'stop', 0), reason: str(env, 'reason', 'stop') };
}

export function parseError(frame: DecodedFrame): ErrorMsg {
  const env = expectType(frame, 'error');
  const code = env.code;
  if (!isErrorCode(code)) fail('DPT_ERR_BAD_FRAME', `error.code ${String(code)} is not a known code`);
  const message = typeof env.message === 'string' ? env.message.slice(0, 1000) : '(no message)';
  const step = typeof env.step === 'number' && Number.isSafeInteger(env.step) ? env.step : null;
  return { type: 'error', code, message, step };
}

/**
 * Throws DPT_ERR_NOT_FINITE naming the first NaN/±Infinity in a received tensor. With the
 * receiver's engine, a tensor copied into that engine's memory is checked there (wasm: SIMD,
 * 37 µs for 269,322 floats against 802 µs for the JS loop over the same shared-memory array); the element is looked for only on failure.
 */
export function checkFinite(what: string, x: Float32Array, kernels?: Pick<Kernels, 'allFinite'>): void {
  if (kernels ? kernels.allFinite(x, x.length) : allFiniteReference(x, x.length)) return;
  for (let j = 0; j < x.length; j++) {
    const v = x[j]!;
    if (v - v !== 0) fail('DPT_ERR_NOT_FINITE', `${what}[${j}] is ${v}`);
  }
}
