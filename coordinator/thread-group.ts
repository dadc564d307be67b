/**
 * N workers on a piscina thread pool, one worker per thread. Threads share memory rather than
 * copying: the training images, the published parameters, the batch indices and the per-rank
 * gradient slots are SharedArrayBuffers posted once at start-up, so a step is N tiny messages
 * out ({step, rank, shard range}) and N tiny replies back (sums' loss/count and timing).
 * Limits: the pool's size is fixed (minThreads = maxThreads = N, no idle teardown), and a step
 * must not start before the previous one has settled (the trainer awaits every step).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { KernelChoice } from '../src/config.js';
import { shardRange } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import { layoutFor, type NetworkSpec } from '../src/model/spec.js';
import type { ThreadReply, ThreadSetup, ThreadTask } from '../worker/thread-task.js';
import { allocThreadMemory, gradSlot, shareImages, type ThreadMemory } from './thread-memory.js';
import { WorkerError, type ShardResult, type StepRequest, type WorkerGroup } from './worker-group.js';

export const DPT_ERR_WORKER_FAILED = 'DPT_ERR_WORKER_FAILED';
export const DPT_ERR_WORKER_EXITED = 'DPT_ERR_WORKER_EXITED';
export const DPT_ERR_GROUP_CLOSED = 'DPT_ERR_GROUP_CLOSED';

export interface ThreadGroupOptions {
  spec: NetworkSpec;
  /** engine each thread creates for itself (createKernels) */
  kernels: KernelChoice;
  /** the training set; copied once into shared memory unless it already lives there */
  train: LabelledImages;
  world: number;
  /** the largest global batch a step may carry */
  maxBatch: number;
  /** fault injection for tests: rank `rank`'s thread exits when it receives step `step` */
  exitAt?: { rank: number; step: number };
}

/** The compiled task file: Node 20 cannot run .ts in a worker, so tests running from source use dist/. */
export function threadTaskFile(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const fromDist = here.split(/[\\/]/).includes('dist');
  const file = fromDist ? join(here, '..', 'worker', 'thread-task.js') : join(here, '..', 'dist', 'worker', 'thread-task.js');
  if (!existsSync(file)) throw new Error(`the compiled thread task ${file} is missing: run \`npm run build\` first`);
  return file;
}

export class ThreadGroup implements WorkerGroup {
  readonly transport = 'threads' as const;
  readonly world: number;
  private readonly pool: Piscina<ThreadTask, ThreadReply>;
  private readonly memory: ThreadMemory;
  private readonly slots: Float32Array[];
  private readonly exitAt: ThreadGroupOptions['exitAt'];
  private closed: Promise<void> | null = null;

  private constructor(o: ThreadGroupOptions) {
    if (!(Number.isInteger(o.world) && o.world >= 1)) throw new RangeError(`--workers must be a positive integer, got ${o.world}`);
    if (!(Number.isInteger(o.maxBatch) && o.maxBatch >= 1)) throw new RangeError(`maxBatch must be a positive integer, got ${o.maxBatch}`);
    this.world = o.world;
    this.exitAt = o.exitAt;
    this.memory = allocThreadMemory(layoutFor(o.spec).size, o.world, o.maxBatch);
    this.slots = Array.from({ length: o.world }, (_, r) => gradSlot(this.memory, r));
    const setup: ThreadSetup = { spec: o.spec, kernels: o.kernels, train: shareImages(o.train), memory: this.memory };
    this.pool = new Piscina<ThreadTask, ThreadReply>({
      filename: threadTaskFile(),
      // A fixed pool: piscina's defaults (minThreads 1, idleTimeout 0) tear threads down and
      // respawn them between steps, which costs ~200 ms a step here.
      minThreads: o.world,
      maxThreads: o.world,
      idleTimeout: 2 ** 31 - 1,
      concurrentTasksPerWorker: 1,
      workerData: setup,
      name: 'default',
    });
    // An idle thread that dies is replaced by piscina; the error belongs to no step, so it is
    // kept from crashing the process here and surfaces on the step that needs the thread.
    this.pool.on('error', () => {});
  }

  /** Starts the pool and waits until every thread has loaded its engine. */
  static async start(o: ThreadGroupOptions): Promise<ThreadGroup> {
    const group = new ThreadGroup(o);
    await group.warmUp();
    return group;
  }

  async computeStep(req: StepRequest): Promise<ShardResult[]> {
    if (this.closed) throw new WorkerError(DPT_ERR_GROUP_CLOSED, 0, req.step, 'the thread group is closed');
    const B = req.indices.length;
    if (B > this.memory.maxBatch) throw new RangeError(`a batch of ${B} examples exceeds the thread group's maxBatch of ${this.memory.maxBatch}`);
    const m = this.memory;
    // Publish: the parameters and the batch go to shared memory once for all ranks. No thread
    // runs while we write (the previous step has settled), and posting the task message after
    // the write is the happens-before edge that makes the workers see it.
    const sentAt = performance.now();
    m.params.set(req.params);
    m.indices.set(req.indices);
    const encodeMs = performance.now() - sentAt;

    const receivedAt = new Float64Array(this.world);
    const runs: Promise<ThreadReply>[] = [];
    for (let rank = 0; rank < this.world; rank++) {
      const [start, end] = shardRange(B, rank, this.world);
      const exitThread = this.exitAt !== undefined && this.exitAt.rank === rank && this.exitAt.step === req.step;
      runs.push(this.pool.run({ step: req.step, rank, start, end, exitThread }).then((reply) => {
        receivedAt[rank] = performance.now();
        return reply;
      }));
    }
    // Wait for every rank, also when one fails: no thread may still be writing a slot when the
    // error reaches the caller, and the pool is shut down before the error is thrown.
    const settled = await Promise.allSettled(runs);
    const failed = settled.findIndex((s) => s.status === 'rejected');
    if (failed >= 0) {
      const reason = (settled[failed] as PromiseRejectedResult).reason as Error;
      await this.close();
      throw toWorkerError(reason, failed, req.step);
    }
    const replies = settled.map((s) => (s as PromiseFulfilledResult<ThreadReply>).value);
    return replies.map((reply, rank) => {
      const d0 = performance.now();
      if (reply.rank !== rank || reply.step !== req.step) throw new WorkerError(DPT_ERR_WORKER_FAILED, rank, req.step, `reply for rank ${reply.rank} step ${reply.step} arrived in its place`);
      const result: ShardResult = {
        rank, grads: this.slots[rank]!, loss: reply.loss, count: reply.count,
        timing: { loadMs: reply.loadMs, computeMs: reply.computeMs, decodeMs: reply.decodeMs, encodeMs: reply.encodeMs },
        bytesSent: 0, bytesReceived: 0,
        sentAt, receivedAt: receivedAt[rank]!, encodeMs, decodeMs: performance.now() - d0,
        queueWaitMs: queueWait(replies, rank, sentAt),
      };
      return result;
    });
  }

  /** Destroys the pool (every thread is terminated); safe to call twice. */
  close(): Promise<void> {
    this.closed ??= this.pool.destroy();
    return this.closed;
  }

  /** Threads alive in the pool (0 after close). */
  get liveThreads(): number {
    return this.pool.threads.length;
  }

  /** One empty shard per thread: resolves once the task module (and its engine) is loaded. */
  private async warmUp(): Promise<void> {
    try {
      await Promise.all(Array.from({ length: this.world }, (_, rank) => this.pool.run({ step: -1, rank, start: 0, end: 0 })));
    } catch (e) {
      await this.close();
      throw toWorkerError(e as Error, 0, -1);
    }
  }
}

/**
 * ms rank's task waited for a thread that was still running another task of this step (piscina
 * gives each idle thread one task, so this is 0 unless a thread ran two shards), on the
 * coordinator's clock; the clocks of threads are aligned through performance.timeOrigin.
 */
function queueWait(replies: ThreadReply[], rank: number, sentAt: number): number {
  const mine = replies[rank]!;
  let busyUntil = -Infinity;
  for (const other of replies) {
    if (other !== mine && other.threadId === mine.threadId && other.finishedAt <= mine.startedAt) {
      busyUntil = Math.max(busyUntil, other.finishedAt);
    }
  }
  if (busyUntil === -Infinity) return 0;
  return Math.max(0, busyUntil - performance.timeOrigin - sentAt);
}

function toWorkerError(reason: Error, rank: number, step: number): WorkerError {
  const message = reason?.message ?? String(reason);
  // piscina reports a thread that died (process.exit, fatal error) as a plain Error naming the exit
  const exited = /exit/i.test(message) && !(reason instanceof RangeError);
  return new WorkerError(exited ? DPT_ERR_WORKER_EXITED : DPT_ERR_WORKER_FAILED, rank, step,
    exited ? `its thread died (${message})` : `${reason?.name ?? 'Error'}: ${message}`);
}
