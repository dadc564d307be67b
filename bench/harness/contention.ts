/**
 * How much ranks computing at the same time slow each other down on this machine: the cost
 * model's κ. A one-worker run cannot show it (its rank has the cores to itself), yet two ranks on
 * two cores share the last-level cache and memory bandwidth, and a VM's cores may share more.
 * The probe runs the net's own training step, on real MNIST rows, in one thread alone and in one
 * thread per core at once: κ = time together ÷ time alone, the lower quartile of a few rounds, at least 1.
 */
import { Worker } from 'node:worker_threads';
import { compiledFile } from '../../src/compiled.js';
import type { KernelChoice } from '../../src/config.js';
import type { LabelledImages } from '../../src/data/idx.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { median } from '../../src/profile/stats.js';

/** Examples per probe step: a typical shard (the nets' working sets at this size outgrow the per-core caches). */
export const CONTENTION_SHARD = 128;

/** What each probe thread receives (bench/harness/contention-probe.ts). */
export interface ProbeSetup {
  spec: NetworkSpec;
  kernels: KernelChoice;
  /** shard × D pixels and shard labels, real MNIST rows */
  pixels: Uint8Array;
  labels: Uint8Array;
  shard: number;
}

/** A burst for a probe thread: free-running steps, or steps in lockstep with `parties` threads counting into `barrier[0]`. */
export type ProbeRequest = number | { steps: number; barrier: Int32Array; parties: number };

export interface ContentionOptions {
  spec: NetworkSpec;
  kernels: KernelChoice;
  train: LabelledImages;
  /** threads at once (the core count) */
  cores: number;
  /** examples per probe step (a typical shard) */
  shard: number;
  /** milliseconds one timed burst should last alone */
  burstMs?: number;
  rounds?: number;
}

/** κ ≥ 1 for this net on this machine; 1 when there is a single core. */
export async function computeContention(o: ContentionOptions): Promise<number> {
  return o.cores <= 1 ? 1 : kappaOf(await contentionRatios(o));
}

/**
 * κ from probe ratios: their lower quartile, at least 1. Contention the ranks cause each other is
 * in every round; what else slows a "together" burst — another job, V8's own background threads
 * (concurrent GC marking, compilation) taking a core — comes and goes, and only ever raises a
 * ratio. In one `dpt bench` run two of three probes came out 1.55-1.67x during a spell like that,
 * while that run's own two-thread cells ran at 1.87x single-node: the median said κ = 1.55.
 */
export function kappaOf(ratios: number[]): number {
  if (ratios.length === 0) return 1;
  const sorted = [...ratios].sort((a, b) => a - b);
  return Math.max(1, sorted[Math.floor((sorted.length - 1) / 4)]!);
}

/**
 * The probe's raw ratios, one per round (time together ÷ time alone): a caller that probes
 * several times over a long benchmark pools them, so one noisy spell does not set κ.
 */
export async function contentionRatios(o: ContentionOptions): Promise<number[]> {
  if (o.cores <= 1) return [1];
  const shard = Math.max(1, Math.min(o.shard, o.train.count));
  const setup = probeSetup(o.spec, o.kernels, o.train, shard);
  const threads = Array.from({ length: o.cores }, () => probeThread(setup));
  try {
    await Promise.all(threads.map(probeReply)); // 'ready'
    // size a burst to about burstMs alone (after compiling everything on every thread)
    const once = Math.max(1e-3, median(await Promise.all(threads.map((w) => probeRun(w, 3)))) / 3);
    const steps = Math.max(3, Math.round((o.burstMs ?? 60) / once));
    const ratios: number[] = [];
    for (let r = 0; r < (o.rounds ?? 5); r++) {
      const alone = await probeRun(threads[r % threads.length]!, steps);
      const together = await Promise.all(threads.map((w) => probeRun(w, steps)));
      ratios.push(median(together) / alone);
    }
    return ratios;
  } finally {
    await Promise.all(threads.map((w) => w.terminate()));
  }
}

/** What a probe thread (bench/harness/contention-probe.ts) needs: the net, the engine, `shard` real MNIST rows. */
export function probeSetup(spec: NetworkSpec, kernels: KernelChoice, train: LabelledImages, shard: number): ProbeSetup {
  const D = train.rows * train.cols;
  return { spec, kernels, shard, pixels: train.images.slice(0, shard * D), labels: train.labels.slice(0, shard) };
}

/** A probe thread (the compiled bench/harness/contention-probe.js) on `setup`. */
export function probeThread(setup: ProbeSetup): Worker {
  return new Worker(compiledFile('bench/harness/contention-probe.js', 'the compiled compute probe'), { workerData: setup });
}

/** The probe thread's next message ('ready', or a burst's milliseconds); rejects if the thread fails. */
export function probeReply(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => { w.off('message', onMessage); reject(e); };
    const onMessage = (m: unknown) => { w.off('error', onError); resolve(m); };
    w.once('message', onMessage);
    w.once('error', onError);
  });
}

/** Runs one burst on a probe thread; its milliseconds. */
export function probeRun(w: Worker, req: ProbeRequest): Promise<number> {
  const p = probeReply(w) as Promise<number>;
  w.postMessage(req);
  return p;
}
