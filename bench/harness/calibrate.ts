/**
 * The coordinator's cost of adding one worker's gradient sums into the total, timed on the
 * engine's own addInto kernel: the cost model's reduce term when no multi-worker cell was run.
 */
import type { Kernels } from '../../src/tensor/kernels.js';
import { median } from '../../src/profile/stats.js';

/** Median ms per float of kernels.addInto over n floats (a few repetitions after a warm-up). */
export function reducePerFloatMs(kernels: Kernels, n: number, reps = 9): number {
  const y = kernels.alloc(n);
  const x = kernels.alloc(n);
  const inner = Math.max(1, Math.ceil(200_000 / n));
  const times: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) kernels.addInto(y, x, n);
    if (r > 0) times.push((performance.now() - t0) / inner / n);
  }
  return median(times);
}

// A fixed arithmetic loop, timed inside a worker thread (plain JS: a worker cannot load .ts).
const SPIN_WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (n) => {
  const t0 = performance.now();
  let x = 0;
  for (let i = 0; i < n; i++) x = (x * 1.0000001 + i) % 1000003;
  parentPort.postMessage({ ms: performance.now() - t0, x });
});`;

/**
 * How many cores this process can use at once right now: the same CPU-bound loop is timed alone
 * and on `cores` threads at the same time; usable = cores × t(alone) / t(together), between 1 and
 * cores. Below the core count when another job shares the machine — which stretches the compute
 * of workers running at the same time just as W > cores does.
 */
export async function usableCores(cores: number, rounds = 5, iterations = 4_000_000): Promise<number> {
  if (cores <= 1) return 1;
  const { Worker } = await import('node:worker_threads');
  const workers = Array.from({ length: cores }, () => new Worker(SPIN_WORKER, { eval: true }));
  // each listener goes once its round is settled: a run leaves nothing behind on the worker
  const run = (w: InstanceType<typeof Worker>): Promise<number> => new Promise((resolve, reject) => {
    const onError = (e: Error) => { w.off('message', onMessage); reject(e); };
    const onMessage = (m: { ms: number }) => { w.off('error', onError); resolve(m.ms); };
    w.once('message', onMessage);
    w.once('error', onError);
    w.postMessage(iterations);
  });
  try {
    await Promise.all(workers.map(run)); // warm-up: compile the loop everywhere
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const alone = await run(workers[0]!);
      const together = await Promise.all(workers.map(run));
      ratios.push((cores * alone) / (together.reduce((a, b) => a + b, 0) / cores));
    }
    return Math.min(cores, Math.max(1, median(ratios)));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
