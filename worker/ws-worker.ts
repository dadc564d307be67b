/**
 * A worker process: connects to a coordinator (retrying with backoff while it is not up yet,
 * and saying so once: connect-wait.ts), proves it knows the token, checks the coordinator does
 * too, builds the network and its own kernel engine from the setup, and then answers each step
 * with the gradient sums of its shard (and each round of local SGD with its delta: ws-round.ts)
 * until told to stop. A worker that loses its coordinator
 * without being told to stop reconnects until --reconnect-timeout and rejoins as a fresh worker
 * (a coordinator restarted with --resume); a refused handshake ends it. Every field of every
 * frame is validated before use (src/protocol).
 *
 * Started by `dpt worker --connect ws://HOST:PORT` (or wss:// when the coordinator serves TLS;
 * --ca FILE adds a certificate to trust) (cli/dpt.ts).
 */
import { hostname } from 'node:os';
import { WebSocket, type RawData } from 'ws';
import { loadMnist, slice } from '../src/data/mnist.js';
import type { LabelledImages } from '../src/data/idx.js';
import { layoutFor, validateSpec } from '../src/model/spec.js';
import { newNonce, proofFor, verifyProof } from '../src/protocol/auth.js';
import { decodeFrame, encodeFrame, FrameWriter, readInto, type Section } from '../src/protocol/codec.js';
import { datasetDigest } from '../src/protocol/digest.js';
import { ProtocolError, closeCodeFor, errorCodeForClose } from '../src/protocol/errors.js';
import {
  checkFinite, parseChallenge, parseError, parseRound, parseSetup, parseStep, parseStop, PROTOCOL_VERSION, type SetupMsg,
} from '../src/protocol/messages.js';
import { decodeHalf, ErrorFeedbackEncoder, HALF_DTYPE } from '../src/protocol/wire-format.js';
import { createKernels } from '../src/tensor/engines.js';
import { ShardComputer } from './compute.js';
import { RoundWorker } from './ws-round.js';
import { ConnectWait, MAX_RETRY_DELAY_MS, NO_ANSWER, NO_ANSWER_MS, ReconnectWait, retryReason, type Wait } from './connect-wait.js';
import { tlsFailure } from './tls-trust.js';

export interface WorkerOptions {
  url: string;
  token: string;
  dataDir: string | null;
  /** wss://: the certificates to trust (system CAs plus --ca FILE); null: the system's only */
  ca: { file: string; certs: string[] } | null;
  /** keep retrying a refused connection this long */
  connectTimeoutMs: number;
  /** after losing the coordinator without a stop, keep reconnecting this long; 0: exit at once */
  reconnectTimeoutMs: number;
  log: (line: string) => void;
}

export class WorkerExit extends Error {
  override readonly name = 'WorkerError';
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** What the worker built from the setup: its network, engine-owned buffers, and its data. */
interface Prepared {
  setup: SetupMsg;
  computer: ShardComputer;
  /** the engine's own parameter buffer: received bytes are copied in (never used in place) */
  params: Float32Array;
  indices: Uint32Array;
  pixels: Uint8Array;
  labels: Uint8Array;
  train: LabelledImages | null;
  D: number;
  lastStep: number;
  writer: FrameWriter;
  /**
   * 16-bit wire: the received params bits, and this worker's own error-feedback residual for its
   * gradients, carried across steps (a worker that rejoins prepares afresh: a zero residual).
   */
  halfParams: Uint16Array;
  gradEncoder: ErrorFeedbackEncoder | null;
  /** local SGD: made on the first round */
  rounds: RoundWorker | null;
}

/**
 * How a session that was not refused ended: told to stop, or the connection was lost (the
 * coordinator died, the network dropped) with the reason in words.
 */
type SessionEnd = { stopped: true } | { stopped: false; lost: string };

/** Runs until the coordinator says stop (resolves) or something fails (rejects with WorkerExit). */
export async function runWorker(o: WorkerOptions): Promise<void> {
  let end = await connectAndServe(o, new ConnectWait(o.url, o.connectTimeoutMs, o.log));
  while (!end.stopped) {
    if (o.reconnectTimeoutMs === 0) throw new WorkerExit(`lost the coordinator at ${o.url} (${end.lost}); not reconnecting (--reconnect-timeout 0)`, 2);
    end = await connectAndServe(o, new ReconnectWait(o.url, o.reconnectTimeoutMs, end.lost, o.log));
  }
}

/** Connects (retrying with backoff until `wait`'s deadline), then serves one session. */
async function connectAndServe(o: WorkerOptions, wait: Wait): Promise<SessionEnd> {
  let delay = 100;
  for (;;) {
    // perMessageDeflate off (the ws client offers it by default); the real frame limit is
    // checked per message once the setup has told us the layout. An all-zero masking key: RFC
    // 6455 has clients mask so that script in a browser cannot put chosen bytes on the wire to
    // fool a proxy's cache; a worker is no browser and sends only its own frames, and with a zero
    // key ws sends the frame as it is instead of copying and XOR-ing every byte into a fresh
    // buffer (1 MB per step for 784-256-256-10, plus the garbage to collect).
    const socket = new WebSocket(o.url, {
      perMessageDeflate: false, maxPayload: 512 * 1024 * 1024, generateMask: zeroMask, ...(o.ca ? { ca: o.ca.certs } : {}),
    });
    // The session's handlers go on before the socket opens: the challenge can arrive in the
    // same packet as the upgrade response and be emitted right after 'open'.
    const opened = new Promise<NodeJS.ErrnoException | null>((resolve) => {
      socket.once('open', () => resolve(null));
      socket.once('error', (e) => resolve(e));
    });
    const done = session(socket, o);
    done.catch(() => {});
    // An address that drops packets neither connects nor fails for minutes (the kernel's SYN
    // retries): say so after a second, and end the attempt at the deadline the worker announced.
    let silentPastDeadline = false;
    const noAnswer = setTimeout(() => wait.waiting(NO_ANSWER), NO_ANSWER_MS);
    const giveUp = setTimeout(() => { silentPastDeadline = true; socket.terminate(); }, Math.max(wait.leftMs(), NO_ANSWER_MS));
    const err = await opened;
    clearTimeout(noAnswer);
    clearTimeout(giveUp);
    if (err === null) {
      wait.connected();
      return done;
    }
    const untrusted = tlsFailure(o.url, err, o.ca?.file ?? null);
    if (untrusted !== null) throw new WorkerExit(untrusted, 2);
    let reason = silentPastDeadline ? 'no answer' : retryReason(err.code);
    // a coordinator serving TLS hangs up on a plain request, which looks like any reset
    if (reason !== null && err.code === 'ECONNRESET' && o.url.startsWith('ws://')) reason += '; if the coordinator serves TLS, connect with wss://';
    if (reason === null) throw new WorkerExit(`cannot connect to ${o.url}: ${err.message}`, 2);
    wait.waiting(reason);
    const left = wait.leftMs();
    if (left <= 0) throw new WorkerExit(wait.gaveUp(reason), 2);
    await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    delay = Math.min(MAX_RETRY_DELAY_MS, delay * 2);
  }
}

function session(socket: WebSocket, o: WorkerOptions): Promise<SessionEnd> {
  return new Promise<SessionEnd>((resolve, reject) => {
    const myNonce = newNonce();
    let challengeNonce: string | null = null;
    let prep: Prepared | null = null;
    let done = false;
    const finish = (end: WorkerExit | SessionEnd): void => {
      if (done) return;
      done = true;
      if (end instanceof WorkerExit) reject(end);
      else resolve(end);
    };
    const refuse = (e: ProtocolError, step: number | null): void => {
      if (socket.readyState === socket.OPEN) {
        socket.send(encodeFrame({ type: 'error', code: e.code, message: e.detail, step }));
        socket.close(closeCodeFor(e.code), e.code);
      }
      finish(new WorkerExit(`refusing the coordinator: ${e.message}`, 1));
    };

    // A refusal (an error code, a frame ws rejects) or a deliberate close (1000, 1001) ends the
    // worker; any other end of the connection is a loss, and the worker may reconnect.
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code?.startsWith('WS_ERR')) finish(new WorkerExit(`connection to ${o.url} failed: ${e.message}`, 1));
      else finish({ stopped: false, lost: e.message });
    });
    socket.on('close', (code, reason) => {
      const known = errorCodeForClose(code);
      if (known === null && code !== 1000 && code !== 1001) {
        finish({ stopped: false, lost: `the connection dropped without a stop, close code ${code}` });
        return;
      }
      finish(new WorkerExit(`the coordinator closed the connection (${known ?? `close code ${code}`}${reason.length ? `: ${reason.toString()}` : ''})`, 1));
    });
    socket.on('message', (data: RawData, isBinary: boolean) => {
      if (done) return;
      try {
        if (!isBinary || !Buffer.isBuffer(data)) throw new ProtocolError('DPT_ERR_BAD_FRAME', 'dpt frames are binary; got a text frame');
        if (prep !== null && data.length > prep.setup.maxPayload + Math.max(stepBytes(prep.setup), roundBytes(prep.setup))) {
          throw new ProtocolError('DPT_ERR_TOO_LARGE', `a ${data.length}-byte frame exceeds what a step or round of this layout needs`);
        }
        const frame = decodeFrame(data);
        const type = frame.envelope.type;
        if (prep !== null && type === 'step' && data.length > prep.setup.maxPayload + stepBytes(prep.setup)) {
          throw new ProtocolError('DPT_ERR_TOO_LARGE', `a ${data.length}-byte frame exceeds what a step of this layout needs`);
        }
        if (type === 'error') {
          const m = parseError(frame);
          finish(new WorkerExit(`the coordinator refused this worker: ${m.code}: ${m.message}`, 1));
          socket.close(1000);
          return;
        }
        if (type === 'stop') {
          const m = parseStop(frame);
          o.log(`stopping: ${m.reason}${prep ? ` (last step ${prep.lastStep})` : ''}`);
          finish({ stopped: true });
          socket.close(1000);
          return;
        }
        if (challengeNonce === null) {
          const c = parseChallenge(frame);
          challengeNonce = c.nonce;
          socket.send(encodeFrame({
            type: 'hello', version: PROTOCOL_VERSION, proof: proofFor(o.token, 'worker', c.nonce), nonce: myNonce,
            host: hostname().slice(0, 200), pid: process.pid,
          }));
          return;
        }
        if (prep === null) {
          const setup = parseSetup(frame);
          if (!verifyProof(o.token, 'coordinator', myNonce, setup.proof)) {
            throw new ProtocolError('DPT_ERR_AUTH', 'the coordinator did not prove it knows the token: check --token / DPT_TOKEN on both sides');
          }
          // Preparing takes a while (loading MNIST); frames that arrive meanwhile wait in order.
          socket.pause();
          prepare(setup, o).then((p) => {
            if (done) return; // lost while preparing
            prep = p;
            socket.send(encodeFrame({ type: 'ready', layoutHash: layoutFor(setup.spec).hash(), dataDigest: p.train ? datasetDigest(p.train) : null, kernels: p.computer.kernels.name }));
            o.log(`joined ${o.url}: ${setup.spec.sizes.join('-')}, kernels ${p.computer.kernels.name}, data ${setup.data}`);
            socket.resume();
          }, (e: Error) => {
            socket.resume(); // a paused socket would never read the close handshake's answer
            refuse(e instanceof ProtocolError ? e : new ProtocolError('DPT_ERR_WORKER_FAILED', e.message), null);
          });
          return;
        }
        if (type === 'round') round(prep, frame, socket);
        else step(prep, frame, socket);
      } catch (e) {
        if (!(e instanceof ProtocolError)) {
          refuse(new ProtocolError('DPT_ERR_WORKER_FAILED', (e as Error).message), prep?.lastStep ?? null);
          return;
        }
        refuse(e, prep?.lastStep ?? null);
      }
    });
  });
}

/** Bytes a step frame may have beyond the setup's maxPayload (params go one way, shards the other). */
function stepBytes(s: SetupMsg): number {
  return s.maxShard * (s.data === 'ship' ? s.spec.sizes[0]! + 1 : 4) + 64;
}

/**
 * Bytes a round frame may have beyond the setup's maxPayload: the velocity, and the rank's rows
 * and the envelope's batch sizes and η (9 bytes each in msgpack) of at most one epoch.
 */
function roundBytes(s: SetupMsg): number {
  return s.layoutSize * 4 + s.trainCount * ((s.data === 'ship' ? s.spec.sizes[0]! + 1 : 4) + 18) + 64;
}

async function prepare(setup: SetupMsg, o: WorkerOptions): Promise<Prepared> {
  validateSpec(setup.spec);
  const layout = layoutFor(setup.spec);
  if (layout.hash() !== setup.layoutHash || layout.size !== setup.layoutSize) {
    throw new ProtocolError('DPT_ERR_LAYOUT_MISMATCH', `this worker's layout for ${setup.spec.sizes.join('-')} hashes to ${layout.hash()} (${layout.size} floats), the coordinator's to ${setup.layoutHash} (${setup.layoutSize}): run the same dpt version on both sides`);
  }
  let train: LabelledImages | null = null;
  const D = setup.spec.sizes[0]!;
  if (setup.data === 'local') {
    const mnist = loadMnist(o.dataDir ?? undefined);
    if (setup.trainCount > mnist.train.count) {
      throw new ProtocolError('DPT_ERR_DATA_MISMATCH', `the coordinator trains on ${setup.trainCount} images, this worker has ${mnist.train.count}`);
    }
    train = slice(mnist.train, 0, setup.trainCount);
    if (datasetDigest(train) !== setup.dataDigest) {
      throw new ProtocolError('DPT_ERR_DATA_MISMATCH', `this worker's first ${setup.trainCount} training images (${mnist.dir}) differ from the coordinator's: use the same MNIST files (--data-dir) or --data ship`);
    }
    if (train.rows * train.cols !== D) throw new ProtocolError('DPT_ERR_DATA_MISMATCH', `images have ${train.rows * train.cols} pixels, the network's input ${D}`);
  }
  const { kernels } = await createKernels(setup.kernels);
  const computer = new ShardComputer(setup.spec, kernels, setup.maxShard);
  // while joining, so the wasm engines' copy of the data set is not paid inside the first steps
  if (train !== null) kernels.holdImages(train.images);
  return {
    setup, computer, params: kernels.alloc(layout.size), train, D,
    indices: new Uint32Array(setup.data === 'local' ? setup.maxShard : 0),
    pixels: new Uint8Array(setup.data === 'ship' ? setup.maxShard * D : 0),
    labels: new Uint8Array(setup.data === 'ship' ? setup.maxShard : 0),
    lastStep: -1, writer: new FrameWriter(layout.size * 4 + 256),
    halfParams: new Uint16Array(setup.wire === 'fp32' ? 0 : layout.size),
    gradEncoder: setup.wire === 'fp32' ? null : new ErrorFeedbackEncoder(setup.wire, layout.size),
    rounds: null,
  };
}

const zeroMask = (mask: Buffer): void => { mask.fill(0); };

/** One step: decode and check, compute, reply. */
function step(p: Prepared, frame: ReturnType<typeof decodeFrame>, socket: WebSocket): void {
  const t0 = performance.now();
  const msg = parseStep(frame, p.setup.maxShard);
  // the same step id twice is a re-assigned shard (another worker of this step was lost)
  if (msg.step < p.lastStep) throw new ProtocolError('DPT_ERR_STALE_STEP', `step ${msg.step} arrived after step ${p.lastStep}`);
  const params = readParams(p, frame);
  let sums;
  if (p.setup.data === 'local') {
    const idx = readInto(frame, 'indices', p.indices, msg.count);
    for (let i = 0; i < idx.length; i++) {
      if (idx[i]! >= p.setup.trainCount) throw new ProtocolError('DPT_ERR_SHAPE', `index ${idx[i]} is beyond the ${p.setup.trainCount} training images`);
    }
    const decodeMs = performance.now() - t0;
    sums = { ...p.computer.computeIndexed(params, p.train!, idx), decodeMs };
  } else {
    const px = readInto(frame, 'pixels', p.pixels, msg.count * p.D);
    const lb = readInto(frame, 'labels', p.labels, msg.count);
    const K = p.setup.spec.sizes.at(-1)!;
    for (let i = 0; i < lb.length; i++) {
      if (lb[i]! >= K) throw new ProtocolError('DPT_ERR_SHAPE', `label ${lb[i]} is not one of the ${K} classes`);
    }
    const decodeMs = performance.now() - t0;
    sums = { ...p.computer.computeShipped(params, px, lb, msg.count), decodeMs };
  }
  p.lastStep = msg.step;
  // 16-bit: send the shard's MEAN gradient, not its sum: a 1024-example sum can exceed fp16's
  // 65504 where the mean cannot; the coordinator multiplies back by the count
  const t1 = performance.now();
  const gradsSection: Section = p.gradEncoder === null
    ? ['grads', sums.grads]
    : p.gradEncoder.section('grads', `the mean gradient of step ${msg.step}`, sums.grads, Math.max(1, sums.count));
  const roundMs = performance.now() - t1;
  const reply = p.writer.encode([gradsSection], (copyMs) => ({
    type: 'grads', step: msg.step, count: sums.count, loss: sums.loss,
    timing: { loadMs: sums.loadMs, computeMs: sums.computeMs, decodeMs: sums.decodeMs, encodeMs: roundMs + copyMs },
  }));
  socket.send(reply, { binary: true });
}

/** The params section, widened from 16 bits when the wire says so, into the engine's buffer; checked finite. */
function readParams(p: Prepared, frame: ReturnType<typeof decodeFrame>): Float32Array {
  const wire = p.setup.wire;
  const params = wire === 'fp32'
    ? readInto(frame, 'params', p.params, p.setup.layoutSize)
    : decodeHalf(p.params, readInto(frame, 'params', p.halfParams, p.setup.layoutSize, HALF_DTYPE[wire]), HALF_DTYPE[wire]);
  checkFinite('params', params, p.computer.kernels);
  return params;
}

/** One round of local SGD for one rank: decode and check, run the round, reply with the delta. */
function round(p: Prepared, frame: ReturnType<typeof decodeFrame>, socket: WebSocket): void {
  const t0 = performance.now();
  const msg = parseRound(frame, p.setup);
  // the same id twice is a re-assigned round (the worker of another rank was lost)
  if (msg.step < p.lastStep) throw new ProtocolError('DPT_ERR_STALE_STEP', `round ${msg.step} arrived after step ${p.lastStep}`);
  const params = readParams(p, frame);
  p.rounds ??= new RoundWorker(p.setup, p.computer);
  const reply = p.rounds.answer(msg, frame, params, p.train, t0);
  p.lastStep = msg.step;
  socket.send(p.writer.encode(reply.sections, reply.envelope), { binary: true });
}
