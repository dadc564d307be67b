/**
 * WebSocket workers: separate processes, on this machine or others, that joined the coordinator's
 * server (ws-server.ts) and hold ranks 0..N-1 in the order they became ready. Each step sends
 * every rank one frame — the parameters (every step: SGD changes all of them) and its shard, as
 * indices (--data local, the worker holds MNIST) or pixels and labels (--data ship) — and waits
 * for every rank's gradient sums, which are copied into a per-rank buffer owned here.
 *
 * A rank whose connection fails makes the step it was in fail with a WorkerError naming the rank
 * and the code; the other connections are untouched. Filling a lost rank is not done here.
 */
import { shardRange } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { KernelChoice } from '../src/config.js';
import { layoutFor, type NetworkSpec } from '../src/model/spec.js';
import { FRAME_OVERHEAD, readInto, wireBytes, type DecodedFrame, type Tensor } from '../src/protocol/codec.js';
import { datasetDigest } from '../src/protocol/digest.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { checkFinite, parseGrads, type DataMode } from '../src/protocol/messages.js';
import type { WorkerConnection } from './ws-connection.js';
import { WsServer } from './ws-server.js';
import { WorkerError, type ShardResult, type StepRequest, type WorkerGroup } from './worker-group.js';

export interface WsGroupOptions {
  spec: NetworkSpec;
  train: LabelledImages;
  world: number;
  maxBatch: number;
  kernels: KernelChoice;
  data: DataMode;
  token: string;
  /** default 127.0.0.1 */
  host?: string;
  /** default 0: any free port */
  port?: number;
  heartbeatMs?: number;
  handshakeTimeoutMs?: number;
  /** where connection events go (refusals, joins, losses) */
  log?: (line: string) => void;
}

export class WsGroup implements WorkerGroup {
  readonly transport = 'ws' as const;
  readonly world: number;
  /** ranks[r] is the connection computing shard r, null while the rank is free */
  private readonly ranks: (WorkerConnection | null)[];
  private server!: WsServer;
  private started = false;
  private closed = false;
  private joinWaiter: { count: number; resolve(): void; reject(e: Error): void } | null = null;
  private readonly layoutSize: number;
  private readonly maxShard: number;
  private readonly pixels: Uint8Array;
  private readonly labels: Uint8Array;
  private readonly D: number;
  private readonly log: (line: string) => void;
  private lastStep: number | null = null;

  private constructor(private readonly o: WsGroupOptions) {
    if (!(Number.isInteger(o.world) && o.world >= 1)) throw new RangeError(`--workers must be a positive integer, got ${o.world}`);
    this.world = o.world;
    this.ranks = new Array(o.world).fill(null);
    this.layoutSize = layoutFor(o.spec).size;
    this.maxShard = Math.ceil(o.maxBatch / o.world);
    this.D = o.train.rows * o.train.cols;
    this.pixels = new Uint8Array(o.data === 'ship' ? this.maxShard * this.D : 0);
    this.labels = new Uint8Array(o.data === 'ship' ? this.maxShard : 0);
    this.log = o.log ?? (() => {});
  }

  /** Starts the server; workers may connect from now on (see waitForWorkers). */
  static async listen(o: WsGroupOptions): Promise<WsGroup> {
    const g = new WsGroup(o);
    const layout = layoutFor(o.spec);
    g.server = await WsServer.listen({
      token: o.token, spec: o.spec, layoutHash: layout.hash(), layoutSize: layout.size, maxShard: g.maxShard,
      kernels: o.kernels, data: o.data, trainCount: o.train.count,
      dataDigest: o.data === 'local' ? datasetDigest(o.train) : null,
      // the largest frame a worker sends is its gradient: the layout in f32 plus the envelope
      maxPayload: layout.size * 4 + FRAME_OVERHEAD,
    }, {
      onReady: (c) => g.onReady(c),
      onFrame: (c, f) => g.onFrame(c, f),
      onClosed: (c) => g.onClosed(c),
      log: g.log,
    }, { host: o.host ?? '127.0.0.1', port: o.port ?? 0, heartbeatMs: o.heartbeatMs ?? 10_000, handshakeTimeoutMs: o.handshakeTimeoutMs ?? 30_000 });
    return g;
  }

  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }

  /** How many ranks are held by an open connection. */
  get joined(): number {
    return this.ranks.filter((c) => c !== null && c.open).length;
  }

  /**
   * Resolves when `count` ranks (default: all) are held; rejects after timeoutMs with how many
   * joined, or early through abortWait (e.g. a locally started worker died).
   */
  waitForWorkers(timeoutMs: number, count = this.world): Promise<void> {
    if (this.joined >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.joinWaiter = null;
        reject(new WorkerError('DPT_ERR_WORKER_TIMEOUT', this.joined, -1,
          `only ${this.joined} of ${this.world} workers joined ${this.url} within ${Math.round(timeoutMs / 1000)} s: start more with \`dpt worker --connect ${this.url}\` (same token), or lower --workers`));
      }, timeoutMs);
      this.joinWaiter = {
        count,
        resolve: () => { clearTimeout(timer); this.joinWaiter = null; resolve(); },
        reject: (e) => { clearTimeout(timer); this.joinWaiter = null; reject(e); },
      };
    });
  }

  abortWait(e: Error): void {
    this.joinWaiter?.reject(e);
  }

  private onReady(conn: WorkerConnection): void {
    // Ranks are handed out until training starts; joining later is left to worker recovery.
    const free = this.started ? -1 : this.ranks.findIndex((c) => c === null || !c.open);
    if (free < 0) {
      const e = new ProtocolError('DPT_ERR_WORLD_FULL', `all ${this.world} ranks are taken${this.started ? ' and training has started' : ''}`);
      this.log(`refused ${conn.label}: ${e.message}`);
      conn.fail(e);
      return;
    }
    conn.rank = free;
    conn.grads = new Float32Array(this.layoutSize);
    this.ranks[free] = conn;
    this.log(`${conn.label} joined (${this.joined}/${this.world})`);
    if (this.joinWaiter && this.joined >= this.joinWaiter.count) this.joinWaiter.resolve();
  }

  private onClosed(conn: WorkerConnection): void {
    if (conn.rank === null || this.closed) return;
    this.log(`${conn.label} left: ${conn.error?.message ?? 'closed'}`);
    if (!this.started && this.ranks[conn.rank] === conn) this.ranks[conn.rank] = null;
  }

  async computeStep(req: StepRequest): Promise<ShardResult[]> {
    if (this.closed) throw new WorkerError('DPT_ERR_WORKER_LOST', 0, req.step, 'the group is closed');
    if (req.params.length !== this.layoutSize) throw new RangeError(`params have ${req.params.length} floats, the layout ${this.layoutSize}`);
    if (this.lastStep !== null && req.step <= this.lastStep) throw new RangeError(`step ${req.step} after step ${this.lastStep}: step ids must increase`);
    this.started = true;
    this.lastStep = req.step;
    for (let r = 0; r < this.world; r++) {
      const c = this.ranks[r];
      if (c === null || !c.open) {
        const why = c?.error?.message ?? 'no worker holds it';
        throw new WorkerError(c?.error?.code ?? 'DPT_ERR_WORKER_LOST', r, req.step, `rank ${r} is gone: ${why}`);
      }
    }
    const settled = await Promise.allSettled(this.ranks.map((c, r) => this.request(c!, r, req)));
    const out: ShardResult[] = [];
    for (let r = 0; r < settled.length; r++) {
      const s = settled[r]!;
      if (s.status === 'rejected') {
        const e = s.reason as Error;
        if (e instanceof ProtocolError) throw new WorkerError(e.code, r, req.step, e.detail);
        throw e;
      }
      out.push(s.value);
    }
    return out;
  }

  private request(conn: WorkerConnection, rank: number, req: StepRequest): Promise<ShardResult> {
    return new Promise<ShardResult>((resolve, reject) => {
      if (!conn.open) {
        reject(conn.error ?? new ProtocolError('DPT_ERR_WORKER_LOST', `${conn.label} closed before step ${req.step} was sent`));
        return;
      }
      const sentAt = performance.now();
      const [start, end] = shardRange(req.indices.length, rank, this.world);
      const count = end - start;
      const shard = req.indices.subarray(start, end);
      const sections: [string, Tensor][] = [['params', req.params]];
      if (this.o.data === 'local') {
        sections.push(['indices', shard]);
      } else {
        gatherPixels(this.pixels, this.labels, this.o.train, shard, this.D);
        sections.push(['pixels', this.pixels.subarray(0, count * this.D)], ['labels', this.labels.subarray(0, count)]);
      }
      const frame = conn.writer.encode(sections, () => ({ type: 'step', step: req.step, count }));
      // the coordinator's share of this request: gathering pixels (ship) and building the frame
      const encodeMs = performance.now() - sentAt;
      conn.pending = { step: req.step, count, sentAt, encodeMs, bytesSent: 0, resolve, reject };
      conn.pending.bytesSent = conn.send(frame);
    });
  }

  private onFrame(conn: WorkerConnection, frame: DecodedFrame): void {
    const t0 = performance.now();
    const p = conn.pending;
    const msg = parseGrads(frame, p);
    const grads = readInto(frame, 'grads', conn.grads!, this.layoutSize);
    checkFinite(`grads from ${conn.label}`, grads);
    conn.pending = null;
    const receivedAt = performance.now();
    p!.resolve({
      rank: conn.rank!, grads, loss: msg.loss, count: msg.count, timing: msg.timing,
      bytesSent: p!.bytesSent, bytesReceived: wireBytes(frame.bytes.length, true),
      sentAt: p!.sentAt, receivedAt, encodeMs: p!.encodeMs, decodeMs: receivedAt - t0, queueWaitMs: 0,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.joinWaiter?.reject(new WorkerError('DPT_ERR_WORKER_LOST', 0, -1, 'the group was closed while waiting for workers'));
    await this.server?.close('training finished', this.lastStep);
  }
}

/** Pixels and labels of the shard's examples, for --data ship (raw bytes; the worker scales). */
function gatherPixels(pixels: Uint8Array, labels: Uint8Array, set: LabelledImages, shard: Uint32Array, D: number): void {
  for (let b = 0; b < shard.length; b++) {
    const idx = shard[b]!;
    pixels.set(set.images.subarray(idx * D, (idx + 1) * D), b * D);
    labels[b] = set.labels[idx]!;
  }
}

