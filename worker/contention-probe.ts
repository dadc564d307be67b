/**
 * One thread of the contention probe (src/profile/contention.ts), run as compiled JS
 * (dist/worker/contention-probe.js): it builds the engine and a ShardComputer for the net, and on
 * each request computes the given number of training steps on the shipped MNIST rows, replying
 * with the milliseconds they took. The driver runs one such thread alone, then all at once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ProbeSetup } from '../src/profile/contention.js';
import { createKernels } from '../src/tensor/engines.js';
import { Rng } from '../src/tensor/rng.js';
import { initParams } from '../src/model/init.js';
import { ShardComputer } from './compute.js';

const setup = workerData as ProbeSetup;
const { kernels } = await createKernels(setup.kernels);
const computer = new ShardComputer(setup.spec, kernels, setup.shard);
const params = computer.network.allocParams();
initParams(params, computer.network.layout, 'scaled', new Rng(1));

parentPort!.on('message', (steps: number) => {
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) computer.computeShipped(params, setup.pixels, setup.labels, setup.shard);
  parentPort!.postMessage(performance.now() - t0);
});
parentPort!.postMessage('ready');
