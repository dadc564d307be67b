/**
 * The ceiling of synchronous data parallelism on this machine for a net and global batch: the
 * speedup W ranks would reach if exchanging parameters and gradients, waking threads and
 * updating cost nothing. One thread computes training steps of the whole batch; then W threads
 * compute their shards (shardRange) in lockstep — each waits for every other to finish a step
 * before its next one, as a synchronous step does — with nothing exchanged. ceiling = single
 * step ÷ lockstep step, median over rounds that alternate the two. What it leaves to a
 * transport: everything beyond it is exchange, wake-ups and the update. Below W it shows what
 * the machine takes away: ranks computing at once slow each other down (shared caches, memory
 * bandwidth, a VM's host), and each lockstep step waits for the slower of the W shards.
 */
import type { Worker } from 'node:worker_threads';
import type { KernelChoice } from '../../src/config.js';
import { shardRange } from '../../src/data/batches.js';
import type { LabelledImages } from '../../src/data/idx.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { probeReply, probeRun, probeSetup, probeThread } from './contention.js';
import { median } from '../../src/profile/stats.js';

export interface CeilingOptions {
  spec: NetworkSpec;
  kernels: KernelChoice;
  train: LabelledImages;
  batch: number;
  /** ranks (threads in lockstep); at most the core count is meaningful */
  world: number;
  /** milliseconds a single-thread burst should last */
  burstMs?: number;
  rounds?: number;
}

export interface Ceiling {
  /** ms per step: one thread, the whole batch */
  singleMs: number;
  /** ms per step: W threads in lockstep, a shard each */
  lockstepMs: number;
  /** median over rounds of single ÷ lockstep */
  speedup: number;
}

/**
 * The probe's threads, started once and measured as often as needed (a benchmark measures the
 * ceiling beside each of its repetitions: on a shared VM it moves from minute to minute).
 */
export class CeilingProbe {
  private readonly single: Worker;
  private readonly ranks: Worker[];
  private readonly barrier = new Int32Array(new SharedArrayBuffer(4));
  private steps = 0;

  private constructor(private readonly o: CeilingOptions) {
    if (!(Number.isInteger(o.world) && o.world >= 1)) throw new RangeError(`world must be a positive integer, got ${o.world}`);
    if (!(Number.isInteger(o.batch) && o.batch >= 1)) throw new RangeError(`batch must be a positive integer, got ${o.batch}`);
    const threadFor = (shard: number) => probeThread(probeSetup(o.spec, o.kernels, o.train, shard));
    this.single = threadFor(o.batch);
    this.ranks = Array.from({ length: o.world }, (_, r) => {
      const [a, b] = shardRange(o.batch, r, o.world);
      return threadFor(Math.max(1, b - a));
    });
  }

  /** Starts the threads, warms them up and sizes a burst to about burstMs of single-thread steps. */
  static async start(o: CeilingOptions): Promise<CeilingProbe> {
    const probe = new CeilingProbe(o);
    try {
      await Promise.all([probe.single, ...probe.ranks].map(probeReply)); // 'ready'
      const once = Math.max(1e-3, (await probeRun(probe.single, 3)) / 3);
      await probe.lockstep(3);
      probe.steps = Math.max(3, Math.round((o.burstMs ?? 150) / once));
    } catch (e) {
      await probe.close();
      throw e;
    }
    return probe;
  }

  /** Rounds alternating one single-thread burst and one lockstep burst; medians. */
  async measure(rounds = this.o.rounds ?? 7): Promise<Ceiling> {
    const singles: number[] = [];
    const locks: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const s = (await probeRun(this.single, this.steps)) / this.steps;
      const l = await this.lockstep(this.steps);
      singles.push(s);
      locks.push(l);
      ratios.push(s / l);
    }
    return { singleMs: median(singles), lockstepMs: median(locks), speedup: median(ratios) };
  }

  async close(): Promise<void> {
    await Promise.all([this.single, ...this.ranks].map((w) => w.terminate()));
  }

  private async lockstep(steps: number): Promise<number> {
    Atomics.store(this.barrier, 0, 0);
    const t0 = performance.now();
    await Promise.all(this.ranks.map((w) => probeRun(w, { steps, barrier: this.barrier, parties: this.o.world })));
    return (performance.now() - t0) / steps;
  }
}

/** One measurement with a probe started and closed for it. */
export async function computeCeiling(o: CeilingOptions): Promise<Ceiling> {
  const probe = await CeilingProbe.start(o);
  try {
    return await probe.measure();
  } finally {
    await probe.close();
  }
}
