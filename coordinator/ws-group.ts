/**
 * WebSocket workers: separate processes, on this machine or others, that joined the coordinator's
 * server (ws-server.ts) and hold ranks firstRank..N-1 in the order they became ready (firstRank 1:
 * the coordinator computes rank 0 itself, coordinator-rank.ts; 0: every rank is a worker, the
 * coordinator only averages). The batch is cut into N shards either way. Each step sends
 * every worker rank one frame — the parameters (every step: SGD changes all of them) and its shard, as
 * indices (--data local, the worker holds MNIST) or pixels and labels (--data ship) — and waits
 * for every rank's gradient sums, which are copied into a per-rank buffer owned here.
 *
 * Worker loss. The shard partition of every step is fixed by --workers (W shards, the
 * same cut as with no failure), and results are kept per SHARD, summed in shard order: whichever
 * connection computed a shard, the step's sum is the same, bit for bit. A connection that closes,
 * misses its heartbeat, sends a bad reply or overruns --step-timeout loses its rank; the shards it
 * had not delivered go, in the same step, to the surviving connections (round-robin in rank order,
 * one shard at a time per connection), so every example of the step is summed exactly once. The
 * step fails only when fewer than minWorkers ranks remain (the coordinator's counted); when no
 * connection is left and that is allowed, the coordinator computes the orphans itself
 * (computeOnCoordinator). A worker that joins later takes a free rank and gets the current
 * parameters with its next shard (they go with every step).
 *
 * Local SGD. A request with `local` is a whole round: each rank gets ONE `round` message
 * (ws-round.ts) and answers with its weighted delta in place of a gradient sum, and with its
 * velocity when there is momentum. A rank's round is its shard here: lost with its worker, it is
 * redone whole by a survivor from the same parameters, velocity and indices, so it gives the
 * same delta, and the deltas are summed in rank order as gradients are.
 */
import { shardRange } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { KernelChoice, WireFormat } from '../src/config.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { layoutFor, type NetworkSpec } from '../src/model/spec.js';
import { readInto, wireBytes, type DecodedFrame, type Section } from '../src/protocol/codec.js';
import { datasetDigest } from '../src/protocol/digest.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { checkFinite, maxReplyBytes, maxWorkerFrame, parseDelta, parseGrads, type DataMode } from '../src/protocol/messages.js';
import type { ServerTls } from '../src/protocol/tls-files.js';
import { decodeHalf, ErrorFeedbackEncoder, HALF_DTYPE } from '../src/protocol/wire-format.js';
import type { PendingStep, WorkerConnection } from './ws-connection.js';
import { RoundRequests } from './ws-round.js';
import { HANDSHAKE_TIMEOUT_MS, MAX_PENDING_HANDSHAKES, WsServer } from './ws-server.js';
import { computedHere, WorkerError, type RankSums, type ShardResult, type StepRequest, type WorkerGroup } from './worker-group.js';

export interface WsGroupOptions {
  spec: NetworkSpec;
  train: LabelledImages;
  /** ranks, and the shards every batch is cut into */
  world: number;
  /**
   * Ranks below this are computed by the coordinator itself (coordinator-rank.ts), the rest by
   * worker processes: 0 (default), every rank a worker; 1, the coordinator computes rank 0.
   */
  firstRank?: number;
  /**
   * With firstRank > 0: computes shard `shard` of the step on the coordinator, on the parameters
   * the workers get (stepParams), when no worker is left to take it. The sums are copied at once.
   */
  computeOnCoordinator?: (shard: number, req: StepRequest) => RankSums;
  maxBatch: number;
  kernels: KernelChoice;
  data: DataMode;
  /** the format of params and grads on the wire (default fp32) */
  wire?: WireFormat;
  token: string;
  /** default 127.0.0.1 */
  host?: string;
  /** default 0: any free port */
  port?: number;
  /** serve wss:// with this certificate and key (default: plain ws://) */
  tls?: ServerTls | null;
  heartbeatMs?: number;
  /** a connection that has not sent ready this long after connecting is closed (default HANDSHAKE_TIMEOUT_MS) */
  handshakeTimeoutMs?: number;
  /** connections still in the handshake at once; more are turned away (default MAX_PENDING_HANDSHAKES) */
  maxPendingHandshakes?: number;
  /** the step fails when fewer ranks than this remain, the coordinator's firstRank counted (default 1) */
  minWorkers?: number;
  /** a shard not answered within this many ms loses its worker (default: no deadline) */
  stepTimeoutMs?: number | null;
  /** where connection events go (refusals, joins, losses) */
  log?: (line: string) => void;
  /**
   * The coordinator's engine: the per-shard gradient buffers are allocated by it, so the received
   * gradients are copied straight into its memory and the reduction adds them in place (a plain
   * array would be staged into engine memory again, ~1 MB per rank per step for 784-256-256-10).
   */
  coordinatorKernels?: Kernels;
}

export class WsGroup implements WorkerGroup {
  readonly transport = 'ws' as const;
  readonly world: number;
  /** the first rank a worker process holds; the ones below are the coordinator's */
  readonly firstRank: number;
  /** ranks[r] is the connection computing shard r, null while the rank is free (always, below firstRank) */
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
  private readonly minWorkers: number;
  /** shardGrads[s]: the gradient sums of shard s this step, owned here (valid until the next step) */
  private readonly shardGrads: Float32Array[];
  private readonly results: (ShardResult | null)[];
  /** workers lost while training (disconnect, heartbeat, deadline, bad reply) */
  lostWorkers = 0;
  /** shards computed by a worker other than their rank's, after a loss */
  reassignedShards = 0;
  private readonly vacantNoted: boolean[];
  /** the coordinator is computing the orphans (no worker left); said once until a worker is back */
  private orphansHere = false;
  /** why each vacant rank's last worker went (for the error when too few remain) */
  private readonly vacatedBy: (ProtocolError | null)[];
  private readonly wire: WireFormat;
  /**
   * 16-bit wire: ONE residual for the parameters, so every rank gets the same rounded parameters
   * this step (the shards must be computed on identical parameters to be summed).
   */
  private readonly paramEncoder: ErrorFeedbackEncoder | null;
  /** this step's params section, encoded once for every request of the step */
  private paramsSection: Section | null = null;
  private paramsEncodeShareMs = 0;
  /** this step's requests, resolved as each is handed to the kernel (see written()) */
  private stepWrites: Promise<void>[] = [];
  /** 16-bit wire: a received grads section before it is widened into its shard's buffer */
  private readonly halfGrads: Uint16Array;
  /** local SGD: builds each rank's round request; made on the first round */
  private rounds: RoundRequests | null = null;
  /** local SGD with momentum: shardVelocities[s], the velocity rank s's round ended with (owned here) */
  private readonly shardVelocities: (Float32Array | null)[];
  /** 16-bit wire with coordinator ranks: this step's parameters as the workers decode them, and for which step */
  private readonly sentParams: Float32Array;
  private sentParamsStep: number | null = null;

  private constructor(private readonly o: WsGroupOptions) {
    if (!(Number.isInteger(o.world) && o.world >= 1)) throw new RangeError(`--workers must be a positive integer, got ${o.world}`);
    this.world = o.world;
    this.firstRank = o.firstRank ?? 0;
    if (!(Number.isInteger(this.firstRank) && this.firstRank >= 0 && this.firstRank < o.world)) {
      throw new RangeError(`firstRank must be an integer from 0 to ${o.world - 1} (a rank for the workers), got ${this.firstRank}`);
    }
    if (this.firstRank > 0 && o.computeOnCoordinator === undefined) throw new RangeError('firstRank > 0 needs computeOnCoordinator: the coordinator computes those ranks');
    this.ranks = new Array(o.world).fill(null);
    this.layoutSize = layoutFor(o.spec).size;
    this.maxShard = Math.ceil(o.maxBatch / o.world);
    this.D = o.train.rows * o.train.cols;
    this.pixels = new Uint8Array(o.data === 'ship' ? this.maxShard * this.D : 0);
    this.labels = new Uint8Array(o.data === 'ship' ? this.maxShard : 0);
    this.log = o.log ?? (() => {});
    this.minWorkers = o.minWorkers ?? 1;
    if (!(Number.isInteger(this.minWorkers) && this.minWorkers >= 1 && this.minWorkers <= o.world)) {
      throw new RangeError(`--min-workers must be an integer from 1 to --workers (${o.world}), got ${this.minWorkers}`);
    }
    const engine = o.coordinatorKernels;
    const alloc = (n: number) => (engine ? engine.alloc(n) : new Float32Array(n));
    // the coordinator's own ranks return their sums in their own buffers; orphans it computes land here
    this.shardGrads = Array.from({ length: o.world }, (_, r) => alloc(r < this.firstRank ? 0 : this.layoutSize));
    this.results = new Array<ShardResult | null>(o.world).fill(null);
    this.vacantNoted = new Array<boolean>(o.world).fill(false);
    this.vacatedBy = new Array<ProtocolError | null>(o.world).fill(null);
    this.wire = o.wire ?? 'fp32';
    this.paramEncoder = this.wire === 'fp32' ? null : new ErrorFeedbackEncoder(this.wire, this.layoutSize);
    this.halfGrads = new Uint16Array(this.wire === 'fp32' ? 0 : this.layoutSize);
    this.shardVelocities = new Array<Float32Array | null>(o.world).fill(null);
    this.sentParams = alloc(this.wire !== 'fp32' && this.firstRank > 0 ? this.layoutSize : 0);
  }

  /** The ranks worker processes hold: world - firstRank. */
  get workerRanks(): number {
    return this.world - this.firstRank;
  }

  /** Starts the server; workers may connect from now on (see waitForWorkers). */
  static async listen(o: WsGroupOptions): Promise<WsGroup> {
    const g = new WsGroup(o);
    const layout = layoutFor(o.spec);
    g.server = await WsServer.listen({
      token: o.token, spec: o.spec, layoutHash: layout.hash(), layoutSize: layout.size, maxShard: g.maxShard,
      kernels: o.kernels, data: o.data, trainCount: o.train.count,
      dataDigest: o.data === 'local' ? datasetDigest(o.train) : null,
      // the largest frame a worker sends: a round's delta and velocity (a step's gradient is half that)
      maxPayload: maxWorkerFrame(layout.size), wire: g.wire,
    }, {
      onReady: (c) => g.onReady(c),
      onFrame: (c, f) => g.onFrame(c, f),
      onClosed: (c) => g.onClosed(c),
      log: g.log,
    }, {
      host: o.host ?? '127.0.0.1', port: o.port ?? 0, heartbeatMs: o.heartbeatMs ?? 10_000, handshakeTimeoutMs: o.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
      maxPendingHandshakes: o.maxPendingHandshakes ?? MAX_PENDING_HANDSHAKES, tls: o.tls ?? null,
    });
    return g;
  }

  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }

  /** Open connections, in the handshake or holding a rank. */
  get connectionCount(): number {
    return this.server.connections.size;
  }

  /** How many ranks are held by an open connection. */
  get joined(): number {
    return this.ranks.filter((c) => c !== null && c.open).length;
  }

  /** "2 workers", or with the coordinator computing: "2 workers (--workers 3: the coordinator computes rank 0)" */
  private workersWanted(): string {
    const n = this.workerRanks;
    return `${n} worker${n === 1 ? '' : 's'}${this.coordinatorNote()}`;
  }

  /** '' when every rank is a worker's; else which ranks the coordinator computes */
  private coordinatorNote(): string {
    if (this.firstRank === 0) return '';
    return ` (--workers ${this.world}: the coordinator computes rank${this.firstRank === 1 ? ' 0' : `s 0 to ${this.firstRank - 1}`})`;
  }

  /**
   * Resolves when `count` worker ranks (default: all of them) are held; rejects after timeoutMs with
   * how many joined, or early through abortWait (e.g. a locally started worker died).
   */
  waitForWorkers(timeoutMs: number, count = this.workerRanks): Promise<void> {
    if (this.joined >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.joinWaiter = null;
        reject(new WorkerError('DPT_ERR_WORKER_TIMEOUT', this.firstRank + this.joined, -1,
          `only ${this.joined} of ${this.workersWanted()} joined ${this.url} within ${Math.round(timeoutMs / 1000)} s: start more with \`dpt worker --connect ${this.url}\` (same token), or lower --workers`));
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
    // A free rank is one never taken or whose worker was lost; a late or restarted worker takes
    // it and computes from the next shard it is sent (parameters go with every shard).
    const free = this.firstFreeRank();
    if (free < 0) {
      const e = new ProtocolError('DPT_ERR_WORLD_FULL', `all ${this.workerRanks} worker ranks are taken (--workers ${this.world}${this.firstRank > 0 ? ', the coordinator computing rank 0' : ''})`);
      this.log(`refused ${conn.label}: ${e.message}`);
      conn.fail(e);
      return;
    }
    conn.rank = free;
    this.ranks[free] = conn;
    this.vacantNoted[free] = false;
    this.log(`${conn.label} joined (${this.joined}/${this.workerRanks})${this.started ? ` before step ${(this.lastStep ?? -1) + 1}` : ''}`);
    if (this.joinWaiter && this.joined >= this.joinWaiter.count) this.joinWaiter.resolve();
  }

  /** The lowest worker rank no open connection holds, or -1. */
  private firstFreeRank(): number {
    for (let r = this.firstRank; r < this.world; r++) if (this.ranks[r] === null || !this.ranks[r]!.open) return r;
    return -1;
  }

  private onClosed(conn: WorkerConnection): void {
    if (conn.rank === null || this.closed) return;
    this.log(`${conn.label} left: ${conn.error?.message ?? 'closed'}`);
    if (this.started) this.lostWorkers++;
    if (this.ranks[conn.rank] === conn) {
      this.ranks[conn.rank] = null;
      this.vacatedBy[conn.rank] = conn.error;
    }
  }

  /**
   * Results of worker ranks firstRank..world-1, in rank order. Every live worker's first request is
   * sent before this returns its promise, so a caller may compute its own ranks meanwhile.
   */
  async computeStep(req: StepRequest): Promise<ShardResult[]> {
    if (this.closed) throw new WorkerError('DPT_ERR_WORKER_LOST', this.firstRank, req.step, 'the group is closed');
    if (req.params.length !== this.layoutSize) throw new RangeError(`params have ${req.params.length} floats, the layout ${this.layoutSize}`);
    if (this.lastStep !== null && req.step <= this.lastStep) throw new RangeError(`step ${req.step} after step ${this.lastStep}: step ids must increase`);
    this.started = true;
    this.lastStep = req.step;
    this.stepWrites = [];
    const t0 = performance.now();
    this.paramsSection = this.paramEncoder === null ? ['params', req.params] : this.paramEncoder.section('params', 'params', req.params);
    // rounding the parameters is done once for all worker ranks; each one's encode time includes its share
    this.paramsEncodeShareMs = (performance.now() - t0) / this.workerRanks;
    const results = this.results;
    results.fill(null);
    const lost: { last: { code: string; rank: number; message: string } | null } = { last: null };
    // Rounds: each live connection computes its own shard, then any orphaned ones it was given,
    // one at a time. A loss during a round leaves that shard undone for the next round.
    for (let round = 0; ; round++) {
      const live: WorkerConnection[] = [];
      for (const c of this.ranks) if (c !== null && c.open) live.push(c);
      const todo: number[] = [];
      for (let s = this.firstRank; s < this.world; s++) if (results[s] === null) todo.push(s);
      if (todo.length === 0) break;
      // the coordinator's own ranks never leave
      const remaining = this.firstRank + live.length;
      if (remaining < this.minWorkers) {
        const gone = (r: number) => this.ranks[r]?.error ?? this.vacatedBy[r] ?? null;
        const vacant: number[] = [];
        for (let r = this.firstRank; r < this.world; r++) if (!this.ranks[r]?.open) vacant.push(r);
        const why = lost.last?.message ?? vacant.map((r) => `rank ${r}: ${gone(r)?.message ?? 'no worker holds it'}`).join('; ');
        const counted = this.firstRank === 0 ? `${live.length} of ${this.world} workers remain`
          : `${remaining} of ${this.world} ranks remain (rank 0 on the coordinator and ${live.length} worker${live.length === 1 ? '' : 's'})`;
        throw new WorkerError(lost.last?.code ?? gone(vacant[0]!)?.code ?? 'DPT_ERR_WORKER_LOST', lost.last?.rank ?? vacant[0]!, req.step,
          `${why}; ${counted} and --min-workers is ${this.minWorkers}`);
      }
      if (live.length === 0) {
        // allowed only with the coordinator's own ranks counted (remaining > 0): it takes the orphans
        this.computeHere(todo, req);
        break;
      }
      this.orphansHere = false;
      const plan = new Map<WorkerConnection, number[]>(live.map((c) => [c, []]));
      // first every live rank's own shard, then the orphans round-robin (own shard first, so a
      // connection never waits behind another's shard for its own)
      const orphans: number[] = [];
      for (const s of todo) {
        const own = this.ranks[s];
        if (own !== null && own.open) plan.get(own)!.push(s);
        else orphans.push(s);
      }
      let next = 0;
      for (const s of orphans) {
        const c = live[next++ % live.length]!;
        plan.get(c)!.push(s);
        this.reassignedShards++;
        // said once per loss, not on every step a rank stays vacant
        if (round > 0 || !this.vacantNoted[s]) this.log(`step ${req.step}: shard ${s} (rank ${s}'s) re-assigned to ${c.label}${round === 0 ? ' (the rank is vacant; its shards go to the survivors until a worker takes it)' : ''}`);
        this.vacantNoted[s] = true;
      }
      await Promise.all([...plan].map(async ([conn, shards]) => {
        for (const s of shards) {
          try {
            results[s] = await this.request(conn, s, req);
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
            lost.last = { code: e.code, rank: conn.rank ?? s, message: e.detail };
            this.log(`step ${req.step}: lost ${conn.label} computing shard ${s}: ${e.message}`);
            return; // the connection is closed; its remaining shards go to the next round
          }
        }
      }));
    }
    return results.slice(this.firstRank) as ShardResult[];
  }

  /**
   * The parameters every worker computes on this step (after computeStep(req) has sent them), for
   * the coordinator's own ranks: req.params itself on the fp32 wire; on a 16-bit wire, the rounded
   * parameters the workers decode, since shards computed on different parameters cannot be summed.
   */
  stepParams(req: StepRequest): Float32Array {
    if (this.paramEncoder === null) return req.params;
    if (this.lastStep !== req.step || this.paramsSection === null) throw new RangeError(`step ${req.step}: its parameters were not sent (the last step sent was ${this.lastStep})`);
    if (this.sentParamsStep !== req.step) {
      decodeHalf(this.sentParams, this.paramsSection[1] as Uint16Array, HALF_DTYPE[this.paramEncoder.format]);
      this.sentParamsStep = req.step;
    }
    return this.sentParams;
  }

  /** No worker is left (and --min-workers allows it): the coordinator computes the step's orphaned shards itself. */
  private computeHere(shards: number[], req: StepRequest): void {
    if (!this.orphansHere) {
      const which = shards.map((s) => `shard ${s} (rank ${s}'s)`).join(', ');
      this.log(`step ${req.step}: no worker is left: ${which} computed on the coordinator until a worker takes ${shards.length === 1 ? 'it' : 'them'}`);
      this.orphansHere = true;
    }
    for (const s of shards) {
      const sentAt = performance.now();
      const sums = this.o.computeOnCoordinator!(s, req);
      const grads = this.shardGrads[s]!;
      grads.set(sums.grads.subarray(0, this.layoutSize));
      // a local-SGD round with momentum: the rank's velocity, copied as its delta is
      let velocity: Float32Array | null = null;
      if (sums.velocity) {
        velocity = this.shardVelocities[s] ??= new Float32Array(this.layoutSize);
        velocity.set(sums.velocity);
      }
      this.reassignedShards++;
      this.vacantNoted[s] = true;
      this.results[s] = computedHere(s, { ...sums, grads: grads.subarray(0, this.layoutSize), velocity }, sentAt);
    }
  }

  private request(conn: WorkerConnection, shardIndex: number, req: StepRequest): Promise<ShardResult> {
    return new Promise<ShardResult>((resolve, reject) => {
      if (!conn.open) {
        reject(conn.error ?? new ProtocolError('DPT_ERR_WORKER_LOST', `${conn.label} closed before step ${req.step} was sent`));
        return;
      }
      const sentAt = performance.now();
      let frame: Buffer;
      let count: number;
      let round: PendingStep['round'] = null;
      if (req.local) {
        this.rounds ??= new RoundRequests(this.o.data, this.o.train, this.world);
        const r = this.rounds.build(req.step, this.paramsSection!, req.indices, req.local, shardIndex);
        frame = conn.writer.encode(r.sections, () => r.envelope);
        count = r.count;
        round = { velocity: r.velocity };
      } else {
        const [start, end] = shardRange(req.indices.length, shardIndex, this.world);
        count = end - start;
        const shard = req.indices.subarray(start, end);
        const sections: Section[] = [this.paramsSection!];
        if (this.o.data === 'local') {
          sections.push(['indices', shard]);
        } else {
          gatherPixels(this.pixels, this.labels, this.o.train, shard, this.D);
          sections.push(['pixels', this.pixels.subarray(0, count * this.D)], ['labels', this.labels.subarray(0, count)]);
        }
        frame = conn.writer.encode(sections, () => ({ type: 'step', step: req.step, count }));
      }
      // the coordinator's share of this request: gathering pixels (ship) and building the frame
      const encodeMs = performance.now() - sentAt + this.paramsEncodeShareMs;
      // a round is --step-timeout for each of its steps: it does their work in one request
      const steps = req.local?.batches.length ?? 1;
      const ms = this.o.stepTimeoutMs == null ? null : this.o.stepTimeoutMs * steps;
      const deadline = ms === null ? null : setTimeout(() => {
        conn.terminate('DPT_ERR_WORKER_TIMEOUT', steps === 1
          ? `${conn.label} did not answer step ${req.step} within ${ms / 1000} s (--step-timeout)`
          : `${conn.label} did not answer the ${steps}-step round from step ${req.step} within ${ms / 1000} s (--step-timeout per step)`);
      }, ms);
      conn.pending = {
        step: req.step, shard: shardIndex, count, round, sentAt, encodeMs, bytesSent: 0,
        resolve: (r) => { if (deadline) clearTimeout(deadline); resolve(r); },
        reject: (e) => { if (deadline) clearTimeout(deadline); reject(e); },
      };
      this.stepWrites.push(new Promise<void>((written) => { conn.pending!.bytesSent = conn.send(frame, written); }));
    });
  }

  /**
   * Resolves once this step's requests, sent when computeStep(req) returned, are in the kernel's
   * socket buffers: from then on the network moves them without this thread. The coordinator's
   * own rank computes after this (coordinator-rank.ts): a frame larger than a socket buffer (1 MiB
   * of 784-256-256-10's parameters) is written in pieces by the event loop, which a synchronous
   * computation would hold up until it ends, so the worker would start its shard that much later.
   */
  async written(): Promise<void> {
    await Promise.all(this.stepWrites);
  }

  private onFrame(conn: WorkerConnection, frame: DecodedFrame): void {
    const t0 = performance.now();
    const p = conn.pending;
    // ws admits any frame up to maxPayload (a round's reply with its velocity); a reply must also
    // be no larger than the request it answers allows
    const limit = maxReplyBytes(this.layoutSize, this.wire, p?.round?.velocity ?? false);
    if (frame.bytes.length > limit) throw new ProtocolError('DPT_ERR_TOO_LARGE', `${conn.label} sent a ${frame.bytes.length}-byte ${String(frame.envelope.type)} frame; the reply to this request has at most ${limit}`);
    if (p?.round) return this.onRoundReply(conn, frame, p, t0);
    const msg = parseGrads(frame, p);
    const dest = this.shardGrads[p!.shard]!;
    // 16-bit grads are the shard's MEAN (the worker divided by its count so fp16 cannot
    // overflow); multiplied back by the count they are the sum the reduction expects
    const grads = this.wire === 'fp32'
      ? readInto(frame, 'grads', dest, this.layoutSize)
      : decodeHalf(dest, readInto(frame, 'grads', this.halfGrads, this.layoutSize, HALF_DTYPE[this.wire]), HALF_DTYPE[this.wire], Math.max(1, msg.count));
    checkFinite(`grads from ${conn.label}`, grads, this.o.coordinatorKernels);
    conn.pending = null;
    const receivedAt = performance.now();
    p!.resolve({
      rank: p!.shard, grads, loss: msg.loss, count: msg.count, timing: msg.timing,
      bytesSent: p!.bytesSent, bytesReceived: wireBytes(frame.bytes.length, true),
      sentAt: p!.sentAt, receivedAt, encodeMs: p!.encodeMs, decodeMs: receivedAt - t0,
    });
  }

  /** A rank's delta (and velocity) for its round: read and checked like a step's gradients. */
  private onRoundReply(conn: WorkerConnection, frame: DecodedFrame, p: PendingStep, t0: number): void {
    const msg = parseDelta(frame, p);
    const dest = this.shardGrads[p.shard]!;
    // 16-bit deltas come divided by the count, as gradients do: n·(p₀ − p)/n is the change of
    // the rank's parameters, small numbers that neither overflow fp16 nor lose bf16's range
    const delta = this.wire === 'fp32'
      ? readInto(frame, 'delta', dest, this.layoutSize)
      : decodeHalf(dest, readInto(frame, 'delta', this.halfGrads, this.layoutSize, HALF_DTYPE[this.wire]), HALF_DTYPE[this.wire], Math.max(1, msg.count));
    checkFinite(`delta from ${conn.label}`, delta, this.o.coordinatorKernels);
    let velocity: Float32Array | null = null;
    if (p.round!.velocity) {
      const engine = this.o.coordinatorKernels;
      const buf = this.shardVelocities[p.shard] ??= engine ? engine.alloc(this.layoutSize) : new Float32Array(this.layoutSize);
      velocity = readInto(frame, 'velocity', buf, this.layoutSize);
      checkFinite(`velocity from ${conn.label}`, velocity, engine);
    } else if (frame.sections.has('velocity')) {
      throw new ProtocolError('DPT_ERR_SHAPE', `${conn.label} sent a velocity for a round without momentum`);
    }
    conn.pending = null;
    const receivedAt = performance.now();
    p.resolve({
      rank: p.shard, grads: delta, ...(velocity ? { velocity } : {}), loss: msg.loss, count: msg.count, timing: msg.timing,
      bytesSent: p.bytesSent, bytesReceived: wireBytes(frame.bytes.length, true),
      sentAt: p.sentAt, receivedAt, encodeMs: p.encodeMs, decodeMs: receivedAt - t0,
    });
  }

  async close(reason = 'training finished'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.joinWaiter?.reject(new WorkerError('DPT_ERR_WORKER_LOST', 0, -1, 'the group was closed while waiting for workers'));
    await this.server?.close(reason, this.lastStep);
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

