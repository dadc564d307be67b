/**
 * The lockstep probe, the cost model's compute term measured directly: how long k ranks computing
 * their shards of n examples at once take per step on this machine, with a free exchange. k
 * threads (bench/harness/lockstep-thread.ts) run the net's own training step on real MNIST rows,
 * and after every step each waits until all k have finished it, as a synchronous step does.
 * What the machine takes away from ranks at once — shared caches and memory bandwidth, a VM's
 * host, another job's share of the cores, the wait for the slower rank — is in the figure; at
 * k = 1 it is one rank's compute alone, at every shard size the model is asked about (per
 * example, a 64-example shard costs more than a 1024-example one: no line says so).
 *
 * The points take turns round by round, so a slow spell of the machine lands on all of them; each
 * figure is the median over the rounds. It measures nothing of the transport: the cost model
 * fits one factor per transport (its workers' compute against the probe's) on one-worker cells.
 */
import { Worker } from 'node:worker_threads';
import { compiledFile } from '../../src/compiled.js';
import type { KernelChoice } from '../../src/config.js';
import type { LabelledImages } from '../../src/data/idx.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import type { LockstepTable } from '../../src/profile/model.js';
import { median } from '../../src/profile/stats.js';

/** k ranks at once, each computing a shard of n examples. */
export interface LockstepPoint {
  shard: number;
  ranks: number;
}

/** What each rank's thread receives. */
export interface LockstepSetup {
  spec: NetworkSpec;
  kernels: KernelChoice;
  /** the largest shard asked for; pixels hold maxShard × D real MNIST bytes, labels maxShard labels */
  maxShard: number;
  pixels: Uint8Array;
  labels: Uint8Array;
}

/** One burst: `steps` timed steps (after one untimed) of `shard` examples, `parties` ranks counting into barrier[0]. */
export interface LockstepRequest {
  steps: number;
  shard: number;
  barrier: Int32Array;
  parties: number;
}

/** What a rank's thread answers for one burst: the timed steps' milliseconds and the examples they computed. */
export interface LockstepReply {
  ms: number;
  examples: number;
}

export interface LockstepOptions {
  spec: NetworkSpec;
  kernels: KernelChoice;
  train: LabelledImages;
  points: LockstepPoint[];
  /** rounds over every point; each figure is the median of its rounds */
  rounds?: number;
  /** milliseconds one burst should last (at least 3 timed steps) */
  burstMs?: number;
}

/** Median ms per step at every point: table[ranks][shard]. */
export async function measureLockstep(o: LockstepOptions): Promise<LockstepTable> {
  for (const p of o.points) {
    if (!(Number.isInteger(p.shard) && p.shard >= 1)) throw new RangeError(`a lockstep shard must be a positive integer, got ${p.shard}`);
    if (!(Number.isInteger(p.ranks) && p.ranks >= 1)) throw new RangeError(`lockstep ranks must be a positive integer, got ${p.ranks}`);
  }
  if (o.points.length === 0) return {};
  const setup = lockstepSetup(o.spec, o.kernels, o.train, Math.max(...o.points.map((p) => p.shard)));
  const file = compiledFile('bench/harness/lockstep-thread.js', 'the compiled lockstep probe');
  const threads = Array.from({ length: Math.max(...o.points.map((p) => p.ranks)) }, () => new Worker(file, { workerData: setup }));
  const barrier = new Int32Array(new SharedArrayBuffer(4));
  const burst = async (p: LockstepPoint, steps: number): Promise<number> => {
    Atomics.store(barrier, 0, 0);
    const replies = await Promise.all(threads.slice(0, p.ranks).map((w) => reply(w, { steps, shard: p.shard, barrier, parties: p.ranks })));
    // a figure stands for whole shards: every rank must have computed `steps` of them
    for (const r of replies) {
      if (r.examples !== steps * p.shard) throw new Error(`lockstep probe: a rank computed ${r.examples} examples in ${steps} steps of ${p.shard}`);
    }
    // every rank leaves its last step's barrier at about the same moment: the slowest reply is the step
    return Math.max(...replies.map((r) => r.ms)) / steps;
  };
  try {
    await Promise.all(threads.map((w) => reply(w, null))); // 'ready'
    // a first pass compiles everything and sizes each point's burst
    const steps = new Map<LockstepPoint, number>();
    for (const p of o.points) steps.set(p, Math.max(3, Math.round((o.burstMs ?? 40) / Math.max(1e-3, await burst(p, 2)))));
    const times = new Map<LockstepPoint, number[]>(o.points.map((p) => [p, []]));
    for (let r = 0; r < (o.rounds ?? 3); r++) for (const p of o.points) times.get(p)!.push(await burst(p, steps.get(p)!));
    const table: LockstepTable = {};
    for (const p of o.points) (table[p.ranks] ??= {})[p.shard] = median(times.get(p)!);
    return table;
  } finally {
    await Promise.all(threads.map((w) => w.terminate()));
  }
}

/** The rows a rank computes: the first maxShard training rows (repeated when the set is smaller). */
function lockstepSetup(spec: NetworkSpec, kernels: KernelChoice, train: LabelledImages, maxShard: number): LockstepSetup {
  const D = train.rows * train.cols;
  const pixels = new Uint8Array(maxShard * D);
  const labels = new Uint8Array(maxShard);
  for (let i = 0; i < maxShard; i++) {
    const row = i % train.count;
    pixels.set(train.images.subarray(row * D, (row + 1) * D), i * D);
    labels[i] = train.labels[row]!;
  }
  return { spec, kernels, maxShard, pixels, labels };
}

/** Posts a request (null: none, wait for 'ready') and resolves with the thread's next message; rejects if the thread fails. */
function reply(w: Worker, req: LockstepRequest | null): Promise<LockstepReply> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => { w.off('message', onMessage); reject(e); };
    const onMessage = (m: LockstepReply) => { w.off('error', onError); resolve(m); };
    w.once('message', onMessage);
    w.once('error', onError);
    if (req !== null) w.postMessage(req);
  });
}
