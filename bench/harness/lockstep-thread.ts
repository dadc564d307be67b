/**
 * One rank of the lockstep probe (bench/harness/lockstep.ts), run as compiled JS
 * (dist/bench/harness/lockstep-thread.js): it builds the engine and a ShardComputer for the net,
 * and on each request computes training steps on the first `shard` of its shipped MNIST rows.
 * After each step it waits until every party has finished that step, as the ranks of a synchronous
 * data-parallel step do, with nothing exchanged. The
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
    arriveAndWait(req.barrier, (s + 1) * req.parties);
    if (s === 0) t0 = performance.now();
  }
  const reply: LockstepReply = { ms: performance.now() - t0, examples };
  parentPort!.postMessage(reply);
});
parentPort!.postMessage('ready');

/**
 * The barrier after a step: the last rank to arrive wakes the others. A rank that arrives earlier
 * polls for up to SPIN_MS, as the thread group's ranks do between steps, then sleeps. A barrier
 * that only spun made the probe depend on every other thread of the machine: inside `dpt bench`
 * two ranks on 512 examples of 784-30-10 took 2.18 ms against 1.00 ms for one alone (and the model
 * predicted threads x2 at 0.79x where it measured 1.71x), and beside another benchmark 4 ms against
 * 0.15 ms, a spinner holding the core its partner needed until the scheduler's next tick. With
 * the poll-then-sleep barrier the same bench measured 1.34 ms against 1.14 ms and predicted
 * threads x2 within 3%.
 */
function arriveAndWait(barrier: Int32Array, until: number): void {
  if (Atomics.add(barrier, 0, 1) + 1 >= until) {
    Atomics.notify(barrier, 0);
    return;
  }
  const pollUntil = performance.now() + SPIN_MS;
  for (let seen = Atomics.load(barrier, 0); seen < until; seen = Atomics.load(barrier, 0)) {
    if (performance.now() > pollUntil) Atomics.wait(barrier, 0, seen, 10);
  }
}

/** how long a rank polls the barrier before it sleeps (the thread group's SPIN_MS cap) */
const SPIN_MS = 1;
