/**
 * N workers on threads: rank 0 on the coordinator's own thread, ranks 1..N-1 on a piscina thread
 * pool, one worker per thread (one worker alone gets a pool thread: `threads x1` measures the
 * exchange). Rank 0 computes on the coordinator's parameters and into its own engine's buffer, in
 * place, as rank 0 of DDP or Horovod does; the coordinator's thread would otherwise sleep through
 * the step, and waking it and the threads cost more than their copies (docs/threads.md).
 * Threads share memory rather than copying: the training images, the published parameters, the
 * batch indices, the per-rank gradient slots and reply rows are SharedArrayBuffers posted once at
 * start-up. Each thread runs one resident piscina task for the life of the group; a step is
 * signalled with Atomics (bump a generation word, poll briefly then wait asynchronously for a done
 * count): with 2 workers and 95 KB of parameters
 * that round trip measured about half the time of one piscina task per rank and step
 * (docs/threads.md). Piscina keeps the threads' lifecycle:
 * it starts them, reports a throw or a dead thread by rejecting that rank's task, and destroys them.
 * A local-SGD round (StepRequest.local) travels the same way: its K batches fill the indices
 * buffer one after another, its batch sizes, η and optimizer settings a small `round` block, the
 * ranks' velocities their velocity slots; each rank's weighted delta comes back in its gradient
 * slot, so the trainer's rank-order reduction reads it as it reads gradients.
 * Limits: one step at a time (the trainer awaits every step); a hung thread is waited for.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { shardRange } from '../src/data/batches.js';
import { createKernels } from '../src/tensor/engines.js';
import { ShardComputer } from '../worker/compute.js';
import { checkRound, LocalRoundRunner } from '../worker/local-round.js';
import { SpinBudget } from '../worker/spin-budget.js';
import { compiledFile } from '../src/compiled.js';
import type { KernelChoice } from '../src/config.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { wasmModule } from '../src/tensor/kernels-wasm.js';
import { layoutFor, type NetworkSpec } from '../src/model/spec.js';
import { roundExamples, type LocalRound } from '../src/optim/local-sgd.js';
import type { ServeTask, ThreadSetup } from '../worker/thread-task.js';
import {
  allocThreadMemory, CTRL_BATCH, CTRL_DONE, CTRL_GEN, CTRL_PARAMS_AT, CTRL_ROUND_STEPS, CTRL_SPINNERS, CTRL_STEP, CTRL_STOP, gradSlot, paramsIndexIn,
  REPLY_FIELDS, R_COMPUTE_MS, R_COUNT, R_DECODE_MS, R_ENCODE_MS, R_LOAD_MS, R_LOSS, R_STEP, shareImages, velocitySlot, writeRound, type ThreadMemory,
} from '../worker/thread-memory.js';
import { computedHere, WorkerError, type ShardResult, type StepRequest, type WorkerGroup } from './worker-group.js';

export const DPT_ERR_WORKER_FAILED = 'DPT_ERR_WORKER_FAILED';
export const DPT_ERR_WORKER_EXITED = 'DPT_ERR_WORKER_EXITED';
export const DPT_ERR_GROUP_CLOSED = 'DPT_ERR_GROUP_CLOSED';

export interface ThreadGroupOptions {
  spec: NetworkSpec;
  /** engine each thread creates for itself (createKernels) */
  kernels: KernelChoice;
  /**
   * The coordinator's own engine (the one its reduction and optimizer run on). When its memory is
   * shared (wasm, blas), the gradient slots are allocated in it, so the rank-order reduction reads
   * them in place, and parameters living in it are read by the threads without a publish copy.
   */
  coordinatorKernels?: Kernels;
  /** the training set; copied once into shared memory unless it already lives there */
  train: LabelledImages;
  world: number;
  /** the largest global batch a step may carry */
  maxBatch: number;
  /**
   * The most steps of a local-SGD round the group serves (the K of --average-every; default 1):
   * the indices buffer holds that many global batches. Above 1, the group also keeps a velocity
   * slot per rank for rounds with momentum.
   */
  maxRoundSteps?: number;
  /** fault injection for tests: rank `rank`'s thread exits when it reaches step `step` */
  exitAt?: { rank: number; step: number };
  /**
   * How long a thread that has finished its shard polls for the next step before it sleeps
   * (default SPIN_MS; 0: sleep at once). At most cores - 1 threads poll at once, none when the
   * group has more threads than cores (a polling thread would take a core from a computing one).
   */
  spinMs?: number;
  /** cores to budget the polling threads against (default availableParallelism()) */
  cores?: number;
  /**
   * Rank 0 on the coordinator's thread (default: with 2 or more workers). False: every rank on a
   * pool thread, the coordinator's thread only publishes, waits and reduces.
   */
  coordinatorRank?: boolean;
}

/** The default poll before sleeping: covers the gap between two steps at batch 1024 (docs/threads.md). */
export const SPIN_MS = 3;

// Atomics.waitAsync is in Node 20 but not in the ES2022 lib this project compiles against.
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number): { value: Promise<string> | string };
}).waitAsync;

/** The compiled task file: Node 20 cannot run .ts in a worker, so tests running from source use dist/. */
export function threadTaskFile(): string {
  return compiledFile('worker/thread-task.js', 'the compiled thread task');
}

export class ThreadGroup implements WorkerGroup {
  readonly transport = 'threads' as const;
  readonly world: number;
  private readonly pool: Piscina<ServeTask, number>;
  private readonly memory: ThreadMemory;
  private readonly slots: Float32Array[];
  private readonly receivedAt: Float64Array;
  private readonly residents: Promise<number>[];
  /** rank 0's computer when it runs on this thread, on the coordinator's engine; null: all ranks on the pool */
  private readonly local: ShardComputer | null;
  /** rank 0's local-SGD buffers when it runs on this thread, made on the first round */
  private localRunner: LocalRoundRunner | null = null;
  private readonly train: LabelledImages;
  /** ranks on pool threads: world, or world - 1 with a local rank 0 */
  private readonly poolRanks: number;
  /** how long this thread polls for the pool's replies before it sleeps; null: never polls */
  private readonly waitBudget: SpinBudget | null;
  /** the first rank whose task ended, and why; set from the task promises, read by the step loop */
  private failure: { rank: number; reason: Error } | null = null;
  private stopping = false;
  private closed: Promise<void> | null = null;

  private constructor(o: ThreadGroupOptions, localEngine: Kernels | null) {
    this.world = o.world;
    const engine = o.coordinatorKernels;
    const cores = o.cores ?? availableParallelism();
    const spinMs = o.world <= cores ? o.spinMs ?? SPIN_MS : 0;
    if (!(Number.isFinite(spinMs) && spinMs >= 0)) throw new RangeError(`spinMs must be a non-negative number, got ${spinMs}`);
    this.train = shareImages(o.train);
    this.local = localEngine === null ? null : new ShardComputer(o.spec, localEngine, Math.ceil(o.maxBatch / o.world));
    // setup, so the wasm engines' copy of the data set is not timed as the first steps' work
    if (localEngine !== null) localEngine.holdImages(this.train.images);
    this.poolRanks = o.world - (this.local ? 1 : 0);
    // This thread polls for the replies instead of sleeping when a core is left for it: a sleeping
    // coordinator is woken ~0.1-0.2 ms after the last reply (the same budget as the threads' polling)
    this.waitBudget = spinMs > 0 && this.poolRanks <= cores - 1 ? new SpinBudget(spinMs) : null;
    this.memory = allocThreadMemory(layoutFor(o.spec).size, o.world, o.maxBatch, o.maxRoundSteps ?? 1, engine ? (n) => engine.alloc(n) : undefined,
      { spinMs, maxSpinners: Math.max(0, cores - 1) });
    this.slots = Array.from({ length: o.world }, (_, r) => gradSlot(this.memory, r));
    this.receivedAt = new Float64Array(o.world);
    const setup: ThreadSetup = {
      spec: o.spec, kernels: o.kernels, train: this.train, memory: this.memory, wasmModule: compiledKernels(o.kernels),
    };
    this.pool = new Piscina<ServeTask, number>({
      filename: threadTaskFile(),
      // A fixed pool of exactly one thread per pool rank, never torn down while idle (piscina's
      // defaults would respawn them); each runs exactly one resident task.
      minThreads: this.poolRanks,
      maxThreads: this.poolRanks,
      idleTimeout: 2 ** 31 - 1,
      concurrentTasksPerWorker: 1,
      workerData: setup,
    });
    // Failures surface through the task promises below; the pool-level event only repeats them.
    this.pool.on('error', () => {});
    this.residents = Array.from({ length: this.poolRanks }, (_, i) => {
      const rank = o.world - this.poolRanks + i;
      const task: ServeTask = { rank, exitAtStep: o.exitAt?.rank === rank ? o.exitAt.step : null };
      const p = this.pool.run(task);
      p.then(
        () => this.fail(rank, new Error('its task returned before the group was closed')),
        (e: unknown) => this.fail(rank, e instanceof Error ? e : new Error(String(e))),
      );
      return p;
    });
  }

  /** Starts the pool and waits until every thread has loaded its engine and is waiting for work. */
  static async start(o: ThreadGroupOptions): Promise<ThreadGroup> {
    if (!(Number.isInteger(o.world) && o.world >= 1)) throw new RangeError(`--workers must be a positive integer, got ${o.world}`);
    if (!(Number.isInteger(o.maxBatch) && o.maxBatch >= 1)) throw new RangeError(`maxBatch must be a positive integer, got ${o.maxBatch}`);
    if (o.maxRoundSteps !== undefined && !(Number.isInteger(o.maxRoundSteps) && o.maxRoundSteps >= 1)) {
      throw new RangeError(`maxRoundSteps must be a positive integer (the --average-every K), got ${o.maxRoundSteps}`);
    }
    const localRank = o.world >= 2 && (o.coordinatorRank ?? true);
    if (localRank && o.exitAt?.rank === 0) {
      throw new RangeError('exitAt: rank 0 runs on the coordinator\'s thread; choose a rank from 1, or coordinatorRank: false');
    }
    // rank 0 computes with the coordinator's engine (the same engine the threads load)
    const local = localRank ? o.coordinatorKernels ?? (await createKernels(o.kernels)).kernels : null;
    const group = new ThreadGroup(o, local);
    try {
      await group.awaitDone(-1);
    } catch (e) {
      await group.close();
      throw e;
    }
    return group;
  }

  async computeStep(req: StepRequest): Promise<ShardResult[]> {
    if (this.closed) throw new WorkerError(DPT_ERR_GROUP_CLOSED, 0, req.step, 'the thread group is closed');
    const m = this.memory;
    const B = req.indices.length;
    const round = req.local ?? null;
    if (round !== null) this.checkRound(round, B);
    else if (B > m.maxBatch) throw new RangeError(`a batch of ${B} examples exceeds the thread group's maxBatch of ${m.maxBatch}`);
    const c = m.control;
    // Publish, then signal. Every worker is asleep in Atomics.wait (the previous step has fully
    // settled), so plain writes are safe; the atomic bump of CTRL_GEN orders them before any
    // worker's read.
    const sentAt = performance.now();
    // parameters in the coordinator engine's shared memory are read there by the threads
    const at = paramsIndexIn(m, req.params);
    if (at < 0) m.params.set(req.params);
    Atomics.store(c, CTRL_PARAMS_AT, at);
    m.indices.set(req.indices);
    if (round !== null) this.publishRound(round);
    Atomics.store(c, CTRL_STEP, req.step);
    Atomics.store(c, CTRL_BATCH, B);
    Atomics.store(c, CTRL_DONE, 0);
    // a stale step id must not pass for this step's reply (runs may restart their step count)
    for (let r = 0; r < this.world; r++) m.replies[r * REPLY_FIELDS + R_STEP] = NaN;
    const encodeMs = performance.now() - sentAt;
    this.receivedAt.fill(0);
    Atomics.add(c, CTRL_GEN, 1);
    Atomics.notify(c, CTRL_GEN);
    const results: ShardResult[] = [];
    if (this.local) results.push(await this.computeLocal(req, round));
    await this.awaitDone(req.step);
    // every rank has finished the round: the next plain step's bump of CTRL_GEN orders this store before its reads
    if (round !== null) Atomics.store(c, CTRL_ROUND_STEPS, 0);

    for (let rank = results.length; rank < this.world; rank++) {
      const d0 = performance.now();
      const reply = m.replies.subarray(rank * REPLY_FIELDS, (rank + 1) * REPLY_FIELDS);
      results.push({
        rank, grads: this.slots[rank]!, loss: reply[R_LOSS]!, count: reply[R_COUNT]!,
        timing: { loadMs: reply[R_LOAD_MS]!, computeMs: reply[R_COMPUTE_MS]!, decodeMs: reply[R_DECODE_MS]!, encodeMs: reply[R_ENCODE_MS]! },
        bytesSent: 0, bytesReceived: 0,
        sentAt, receivedAt: this.receivedAt[rank]!, encodeMs, decodeMs: performance.now() - d0,
      });
    }
    if (round?.velocities) {
      for (let rank = this.world - this.poolRanks; rank < this.world; rank++) results[rank]!.velocity = velocitySlot(m, rank);
    }
    return results;
  }

  /** A round the shared memory can carry; refused before anything is published, so the group stays usable. */
  private checkRound(round: LocalRound, indices: number): void {
    const m = this.memory;
    checkRound(round, 0, this.world);
    const K = round.batches.length;
    if (K > m.maxRoundSteps) {
      throw new RangeError(`a local round of ${K} steps exceeds the thread group's maxRoundSteps of ${m.maxRoundSteps}: start the group with maxRoundSteps of at least the --average-every K`);
    }
    for (const b of round.batches) {
      if (b > m.maxBatch) throw new RangeError(`a batch of ${b} examples exceeds the thread group's maxBatch of ${m.maxBatch}`);
    }
    const examples = roundExamples(round);
    if (indices !== examples) throw new RangeError(`a local round of ${examples} examples came with ${indices} indices`);
    if (round.velocities !== null && m.velocities === null) {
      throw new RangeError('a local round with momentum needs velocity slots, which the thread group keeps only when started with maxRoundSteps above 1');
    }
  }

  /** The round's settings, and the pool ranks' starting velocities, into shared memory (the threads are asleep). */
  private publishRound(round: LocalRound): void {
    const m = this.memory;
    writeRound(m, round);
    if (round.velocities !== null) {
      for (let r = this.world - this.poolRanks; r < this.world; r++) velocitySlot(m, r).set(round.velocities[r]!);
    }
    Atomics.store(m.control, CTRL_ROUND_STEPS, round.batches.length);
  }

  /**
   * Rank 0's shard, computed here on the coordinator's parameters as they are (no copy) while the
   * pool computes the others. A throw fails the step like a thread's: the pool is shut down first.
   */
  private async computeLocal(req: StepRequest, round: LocalRound | null): Promise<ShardResult> {
    const sentAt = performance.now();
    try {
      if (round === null) {
        const [start, end] = shardRange(req.indices.length, 0, this.world);
        return computedHere(0, this.local!.computeIndexed(req.params, this.train, req.indices.subarray(start, end)), sentAt);
      }
      // a local round: its delta stays in the runner's buffer until the next round
      const s = (this.localRunner ??= new LocalRoundRunner(this.local!)).run(req.params, this.train, req.indices, round, 0, this.world);
      return computedHere(0, { ...s, grads: s.delta }, sentAt);
    } catch (e) {
      // the pool's ranks finish this step, see the stop and end
      await this.close();
      throw toWorkerError(e instanceof Error ? e : new Error(String(e)), 0, req.step);
    }
  }

  /** Stops the resident tasks and destroys the pool (every thread ends); safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.stopping = true;
      const c = this.memory.control;
      Atomics.store(c, CTRL_STOP, 1);
      Atomics.add(c, CTRL_GEN, 1);
      Atomics.notify(c, CTRL_GEN);
      // healthy threads return from their task; a failed or dead one has already settled
      await Promise.allSettled(this.residents);
      await this.pool.destroy();
    })();
    return this.closed;
  }

  /**
   * True when the threads read `params` where it is, in the coordinator engine's memory, instead of
   * a copy the coordinator publishes each step (for tests and reports).
   */
  readsInPlace(params: Float32Array): boolean {
    return paramsIndexIn(this.memory, params) >= 0;
  }

  /** Threads polling for the next step right now rather than asleep (for tests and reports). */
  get spinningThreads(): number {
    return Atomics.load(this.memory.control, CTRL_SPINNERS);
  }

  /** Threads alive in the pool (0 after close). */
  get liveThreads(): number {
    return this.pool.threads.length;
  }

  /**
   * Waits until every rank has counted itself done for `step` (-1: ready), noting when each
   * rank's reply arrived. A failed rank wakes this wait too (fail() notifies CTRL_DONE); the
   * step then fails with an error naming the rank and the step, after the pool is shut down.
   */
  private async awaitDone(step: number): Promise<void> {
    const c = this.memory.control;
    const replies = this.memory.replies;
    const first = this.world - this.poolRanks;
    const waitStart = performance.now();
    if (step >= 0 && this.waitBudget !== null) {
      // poll first (a thread's failure is only seen below, once the poll has given up)
      const until = waitStart + this.waitBudget.ms;
      while (Atomics.load(c, CTRL_DONE) < this.poolRanks && performance.now() < until) {
        for (let r = first; r < this.world; r++) {
          if (this.receivedAt[r] === 0 && replies[r * REPLY_FIELDS + R_STEP] === step) this.receivedAt[r] = performance.now();
        }
      }
    }
    for (;;) {
      if (this.failure) {
        const { rank, reason } = this.failure;
        await this.close();
        throw toWorkerError(reason, rank, step);
      }
      const done = Atomics.load(c, CTRL_DONE);
      if (step >= 0) {
        const now = performance.now();
        for (let r = first; r < this.world; r++) {
          if (this.receivedAt[r] === 0 && replies[r * REPLY_FIELDS + R_STEP] === step) this.receivedAt[r] = now;
        }
      }
      if (done >= this.poolRanks) {
        if (step >= 0) this.waitBudget?.record(performance.now() - waitStart);
        return;
      }
      await waitAsync(c, CTRL_DONE, done).value;
    }
  }

  private fail(rank: number, reason: Error): void {
    if (this.stopping || this.failure) return;
    this.failure = { rank, reason };
    Atomics.notify(this.memory.control, CTRL_DONE);
  }
}

/**
 * The wasm kernels compiled once, here, for every thread: posted through workerData, the threads
 * share the compiled (and as it warms up, optimised) code instead of each compiling its own copy
 * in the first seconds of a run. Undefined for the js engine, or where the module does not
 * compile (each thread then reports why, as before).
 */
function compiledKernels(kernels: KernelChoice): WebAssembly.Module | undefined {
  if (kernels === 'js') return undefined;
  try {
    return wasmModule();
  } catch {
    return undefined;
  }
}

function toWorkerError(reason: Error, rank: number, step: number): WorkerError {
  const message = reason.message;
  // piscina reports a thread that died (process.exit, fatal error) as "worker exited with code: N"
  const exited = /worker exited/i.test(message);
  return new WorkerError(exited ? DPT_ERR_WORKER_EXITED : DPT_ERR_WORKER_FAILED, rank, step,
    exited ? `its thread died (${message})` : `${reason.name}: ${message}`);
}
