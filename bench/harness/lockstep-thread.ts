/**
 * One rank of the lockstep probe (bench/harness/lockstep.ts), run as compiled JS
 * (dist/bench/harness/lockstep-thread.js): it builds the engine and a ShardComputer for the net,
 * and on each request computes training steps on the first `shard` of its shipped MNIST rows.
 * After each step it waits (spinning: at most one rank per core) until every party has finished
 * that step, as the ranks of a synchronous data-parallel step do, with nothing exchanged. The
 * first step of a request is not timed: it runs with the caches full of the previous request's
 * shard. Replies with the milliseconds of the timed steps and the examples they computed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LockstepReply, LockstepRequest, LockstepSetup } from './lockstep.js';
import { createKernels } from '../../src/tensor/engines.js';
import { Rng } from '../../src/tensor/rng.js';
import { initParams } from '../../src/model/init.js';
import { ShardComputer } from '../../worker/compute.js';

const setup = workerData as LockstepSetup;
const { kernels } = await createKernels(setup.kernels);
const computer = new ShardComputer(setup.spec, kernels, setup.maxShard);
const params = computer.network.allocParams();
initParams(params, computer.network.layout, 'scaled', new Rng(1));

parentPort!.on('message', (req: LockstepRequest) => {
  let t0 = 0;
  let examples = 0;
  for (let s = 0; s <= req.steps; s++) {
    const sums = computer.computeShipped(params, setup.pixels, setup.labels, req.shard);
    if (s > 0) examples += sums.count;
    const until = (s + 1) * req.parties;
    Atomics.add(req.barrier, 0, 1);
    while (Atomics.load(req.barrier, 0) < until) { /* spin: the others are finishing this step */ }
    if (s === 0) t0 = performance.now();
  }
  const reply: LockstepReply = { ms: performance.now() - t0, examples };
  parentPort!.postMessage(reply);
});
parentPort!.postMessage('ready');
