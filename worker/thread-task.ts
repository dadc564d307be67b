/**
 * The piscina task of the thread-pool group, run as compiled JS (dist/worker/thread-task.js).
 * Each thread builds its own kernel engine and ShardComputer once; a task is then only a step
 * id, a rank and a shard range. Parameters are read from shared memory and the gradient sum is
 * written to the rank's shared slot, so a step posts two tiny messages and clones no tensor.
 */
import { threadId } from 'node:worker_threads';
import { workerData } from 'piscina';
import type { ThreadMemory } from '../coordinator/thread-memory.js';
import { gradSlot } from '../coordinator/thread-memory.js';
import type { KernelChoice } from '../src/config.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { NetworkSpec } from '../src/model/spec.js';
import { createKernels } from '../src/tensor/engines.js';
import { ShardComputer } from './compute.js';

/** What every thread receives once (piscina workerData); the typed arrays share memory. */
export interface ThreadSetup {
  spec: NetworkSpec;
  kernels: KernelChoice;
  train: LabelledImages;
  memory: ThreadMemory;
}

export interface ThreadTask {
  step: number;
  rank: number;
  /** [start, end) of this rank's shard within memory.indices */
  start: number;
  end: number;
  /** fault injection for the failure tests: the thread exits (as if it crashed) on this task */
  exitThread?: boolean;
}

export interface ThreadReply {
  step: number;
  rank: number;
  loss: number;
  count: number;
  loadMs: number;
  computeMs: number;
  /** copying the parameters from shared memory into the engine's own buffer */
  decodeMs: number;
  /** copying the gradient sum into the rank's shared slot */
  encodeMs: number;
  /** performance.timeOrigin + performance.now() at task start and end: comparable across threads */
  startedAt: number;
  finishedAt: number;
  threadId: number;
}

async function setUp(): Promise<(task: ThreadTask) => ThreadReply> {
  const setup = workerData as ThreadSetup;
  const { memory, train } = setup;
  const { kernels } = await createKernels(setup.kernels);
  const computer = new ShardComputer(setup.spec, kernels, Math.ceil(memory.maxBatch / memory.world));
  // The engine computes on its own buffers (wasm memory for the wasm engine): shared memory is
  // foreign to it, so parameters are copied in at the start of a step and gradients out at the end.
  const params = kernels.alloc(memory.paramCount);

  return function runShard(task: ThreadTask): ThreadReply {
    const startedAt = performance.timeOrigin + performance.now();
    if (task.exitThread) process.exit(70);
    const indices = memory.indices.subarray(task.start, task.end);
    for (let i = 0; i < indices.length; i++) {
      if (indices[i]! >= train.count) throw new RangeError(`example index ${indices[i]} is outside the ${train.count} training images`);
    }
    const t0 = performance.now();
    params.set(memory.params);
    const t1 = performance.now();
    const sums = computer.computeIndexed(params, train, indices);
    const t2 = performance.now();
    gradSlot(memory, task.rank).set(sums.grads);
    const t3 = performance.now();
    return {
      step: task.step, rank: task.rank, loss: sums.loss, count: sums.count,
      loadMs: sums.loadMs, computeMs: sums.computeMs, decodeMs: t1 - t0, encodeMs: t3 - t2,
      startedAt, finishedAt: performance.timeOrigin + t3, threadId,
    };
  };
}

// piscina awaits a promised default export once, when the thread starts, so the engine is ready
// before the first task arrives.
export default setUp();
