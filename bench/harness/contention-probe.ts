/**
 * One thread of the compute probes (bench/harness/contention.ts, bench/harness/ceiling.ts), run as
 * compiled JS (dist/bench/harness/contention-probe.js): it builds the engine and a ShardComputer for the
 * net, and on each request computes the given number of training steps on the shipped MNIST
 * rows, replying with the milliseconds they took. The contention driver runs one such thread
 * alone, then all at once; the ceiling driver runs them in lockstep: after each step a thread
 * waits (spinning: one thread per core) until every party has finished that step, as the ranks of
 * a synchronous data-parallel step do, but with nothing exchanged.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ProbeRequest, ProbeSetup } from './contention.js';
import { createKernels } from '../../src/tensor/engines.js';
import { Rng } from '../../src/tensor/rng.js';
import { initParams } from '../../src/model/init.js';
import { ShardComputer } from '../../worker/compute.js';

const setup = workerData as ProbeSetup;
const { kernels } = await createKernels(setup.kernels);
const computer = new ShardComputer(setup.spec, kernels, setup.shard);
const params = computer.network.allocParams();
initParams(params, computer.network.layout, 'scaled', new Rng(1));

parentPort!.on('message', (req: ProbeRequest) => {
  const steps = typeof req === 'number' ? req : req.steps;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    computer.computeShipped(params, setup.pixels, setup.labels, setup.shard);
    if (typeof req !== 'number') {
      const until = (s + 1) * req.parties;
      Atomics.add(req.barrier, 0, 1);
      while (Atomics.load(req.barrier, 0) < until) { /* spin: the others are finishing this step */ }
    }
  }
  parentPort!.postMessage(performance.now() - t0);
});
parentPort!.postMessage('ready');
