/**
 * The piscina task of the thread-pool group, run as compiled JS (dist/worker/thread-task.js).
 * Each thread builds its own kernel engine and ShardComputer once. Its one task, `serve`, stays
 * resident for the life of the group: it sleeps in Atomics.wait until the coordinator bumps the
 * step generation, computes its shard from shared memory (or runs its rank through a local-SGD
 * round: thread-round.ts), writes the gradient sum (the round's delta) to its slot and its sums
 * and timing to its reply row, and counts itself done. Piscina still owns the
 * thread: it started it, and a throw or a dead thread rejects the task's promise, which is how
 * the coordinator learns of a failure. No tensor is ever cloned or posted.
 */
import { workerData } from 'piscina';
import {
  CTRL_BATCH, CTRL_DONE, CTRL_GEN, CTRL_PARAMS_AT, CTRL_ROUND_STEPS, CTRL_SPINNERS, CTRL_STEP, CTRL_STOP, gradSlot, REPLY_FIELDS, R_COMPUTE_MS, R_COUNT, R_DECODE_MS,
  R_ENCODE_MS, R_LOAD_MS, R_LOSS, R_STEP, type ThreadMemory,
} from './thread-memory.js';
import type { KernelChoice } from '../src/config.js';
import { shardRange } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { NetworkSpec } from '../src/model/spec.js';
import { createKernels } from '../src/tensor/engines.js';
import { adoptWasmModule } from '../src/tensor/kernels-wasm.js';
import { ShardComputer } from './compute.js';
import { SpinBudget } from './spin-budget.js';
import { ThreadRound } from './thread-round.js';

/** What every thread receives once (piscina workerData); the typed arrays share memory. */
export interface ThreadSetup {
  spec: NetworkSpec;
  kernels: KernelChoice;
  train: LabelledImages;
  memory: ThreadMemory;
  /** the wasm kernels as the coordinator compiled them (shared code); absent for the js engine */
  wasmModule?: WebAssembly.Module;
}

export interface ServeTask {
  rank: number;
  /** fault injection for the failure tests: the thread exits (as if it crashed) on this step */
  exitAtStep: number | null;
}

async function setUp(): Promise<(task: ServeTask) => number> {
  const setup = workerData as ThreadSetup;
  const { memory: m, train } = setup;
  if (setup.wasmModule) adoptWasmModule(setup.wasmModule);
  const { kernels } = await createKernels(setup.kernels);
  const computer = new ShardComputer(setup.spec, kernels, Math.ceil(m.maxBatch / m.world));
  // at start-up, so the wasm engines' copy of the data set is not paid inside the first steps
  kernels.holdImages(train.images);
  // The engine computes on its own buffers (wasm memory for the wasm engine): shared memory is
  // foreign to it, so parameters are copied in at the start of a step and gradients out at the end.
  const params = kernels.alloc(m.paramCount);
  const c = m.control;
  // the coordinator's parameter buffer, when it publishes in place (CTRL_PARAMS_AT >= 0); the
  // view is made once per location, not per step
  let sourceAt = -1;
  let source = m.params;
  const paramsSource = (at: number): Float32Array => {
    if (at < 0) return m.params;
    if (at !== sourceAt) {
      if (m.engineMemory === null) throw new Error('the coordinator published parameters in place but shares no engine memory');
      source = m.engineMemory.subarray(at, at + m.paramCount);
      sourceAt = at;
    }
    return source;
  };

  return function serve(task: ServeTask): number {
    const { rank } = task;
    const slot = gradSlot(m, rank);
    const reply = m.replies.subarray(rank * REPLY_FIELDS, (rank + 1) * REPLY_FIELDS);
    let gen = Atomics.load(c, CTRL_GEN);
    // Ready: the coordinator waits for every rank to get here before its first bump of CTRL_GEN,
    // so no bump can fall between our load of the generation and our wait on it.
    Atomics.add(c, CTRL_DONE, 1);
    Atomics.notify(c, CTRL_DONE);
    let steps = 0;
    // a local-SGD round's buffers, made on the first round
    let rounds: ThreadRound | null = null;
    const budget = new SpinBudget(m.spinMs);
    for (;;) {
      const finishedAt = performance.now();
      awaitNextStep(m, gen, budget.ms);
      if (steps > 0) budget.record(performance.now() - finishedAt);
      gen = Atomics.load(c, CTRL_GEN);
      if (Atomics.load(c, CTRL_STOP) !== 0) return steps;
      const step = Atomics.load(c, CTRL_STEP);
      if (step === task.exitAtStep) process.exit(70);
      const roundSteps = Atomics.load(c, CTRL_ROUND_STEPS);
      let sums: { loss: number; count: number; loadMs: number; computeMs: number };
      let t0: number, t1: number, t2: number;
      if (roundSteps === 0) {
        const [start, end] = shardRange(Atomics.load(c, CTRL_BATCH), rank, m.world);
        // an index outside the training set is refused by the engine's gather, as for every group
        const indices = m.indices.subarray(start, end);
        t0 = performance.now();
        params.set(paramsSource(Atomics.load(c, CTRL_PARAMS_AT)));
        t1 = performance.now();
        const shard = computer.computeIndexed(params, train, indices);
        t2 = performance.now();
        slot.set(shard.grads);
        sums = shard;
      } else {
        t0 = performance.now();
        params.set(paramsSource(Atomics.load(c, CTRL_PARAMS_AT)));
        t1 = performance.now();
        rounds ??= new ThreadRound(m, train, rank, computer);
        const round = rounds.run(params, roundSteps);
        t2 = performance.now();
        rounds.writeBack(round);
        sums = round;
      }
      const t3 = performance.now();
      reply[R_LOSS] = sums.loss;
      reply[R_COUNT] = sums.count;
      reply[R_LOAD_MS] = sums.loadMs;
      reply[R_COMPUTE_MS] = sums.computeMs;
      reply[R_DECODE_MS] = t1 - t0;
      reply[R_ENCODE_MS] = t3 - t2;
      reply[R_STEP] = step;
      steps++;
      // The atomic add publishes the slot and the reply row: the coordinator reads them only
      // after it has seen this count.
      Atomics.add(c, CTRL_DONE, 1);
      Atomics.notify(c, CTRL_DONE);
    }
  };
}

/**
 * Returns once the coordinator has bumped the step generation past `gen`. On this kind of machine
 * (a VM's vCPUs) a thread asleep in Atomics.wait costs ~0.1-1 ms to wake, and a vCPU left idle
 * comes back slower for the next milliseconds of compute too; a thread that keeps polling between
 * two steps does neither (measured in docs/threads.md). So a thread first spins for spinMs (a
 * few times the usual gap between steps, at most m.spinMs: spin-budget.ts), then sleeps. At most
 * m.maxSpinners threads spin at once (the cores less one): the coordinator's own thread needs a
 * core between two steps to add the gradients, step the optimizer and publish the next step, and
 * a spinner on every core would have it wait for the scheduler to preempt one.
 */
function awaitNextStep(m: ThreadMemory, gen: number, spinMs: number): void {
  const c = m.control;
  if (spinMs > 0 && Atomics.load(c, CTRL_GEN) === gen) {
    if (Atomics.add(c, CTRL_SPINNERS, 1) < m.maxSpinners) {
      const until = performance.now() + spinMs;
      while (Atomics.load(c, CTRL_GEN) === gen && performance.now() < until) { /* spin */ }
    }
    Atomics.sub(c, CTRL_SPINNERS, 1);
  }
  Atomics.wait(c, CTRL_GEN, gen);
}

// piscina awaits a promised default export once, when the thread starts, so the engine is ready
// before the task arrives.
export default setUp();
