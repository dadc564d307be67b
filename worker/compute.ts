/**
 * What a worker does for one step, whatever the transport: gather its shard of examples into
 * the workspace, zero its gradient buffer, and compute the gradient SUM and loss SUM over the
 * shard. Pure computation: no I/O, no clocks beyond its own timing.
 */
import { gatherBatch, PIXEL_SCALE } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import { Network, type Workspace } from '../src/model/network.js';
import type { NetworkSpec } from '../src/model/spec.js';
import type { Kernels } from '../src/tensor/kernels.js';

export interface ShardSums {
  /** Σ ∇C_x over the shard, in the parameter layout (owned by the computer, overwritten next call) */
  grads: Float32Array;
  loss: number;
  count: number;
  /** milliseconds spent gathering the examples (DATA_LOAD) and in forward+backward (COMPUTE) */
  loadMs: number;
  computeMs: number;
}

export class ShardComputer {
  readonly network: Network;
  readonly grads: Float32Array;
  private readonly ws: Workspace;

  constructor(spec: NetworkSpec, readonly kernels: Kernels, maxShard: number) {
    this.network = new Network(spec, kernels);
    this.grads = kernels.alloc(this.network.layout.size);
    this.ws = this.network.createWorkspace(Math.max(1, maxShard));
  }

  /** Gradient sums over the examples `indices` of `set` (the worker holds the data). */
  computeIndexed(params: Float32Array, set: LabelledImages, indices: ArrayLike<number>): ShardSums {
    const t0 = performance.now();
    this.checkShard(indices.length);
    gatherBatch(this.ws.input, this.ws.labels, set, indices);
    const t1 = performance.now();
    return this.run(params, indices.length, t1 - t0, t1);
  }

  /** Gradient sums over shipped rows: `pixels` holds count × D bytes, `labels` count labels. */
  computeShipped(params: Float32Array, pixels: Uint8Array, labels: Uint8Array, count: number): ShardSums {
    const t0 = performance.now();
    this.checkShard(count);
    const D = this.network.inputSize;
    const input = this.ws.input;
    for (let i = 0; i < count * D; i++) input[i] = pixels[i]! * PIXEL_SCALE;
    this.ws.labels.set(labels.subarray(0, count));
    const t1 = performance.now();
    return this.run(params, count, t1 - t0, t1);
  }

  private run(params: Float32Array, count: number, loadMs: number, t1: number): ShardSums {
    this.kernels.zero(this.grads, this.grads.length);
    // An empty shard (batch smaller than the world) contributes zero gradient and zero loss.
    const loss = count > 0 ? this.network.lossAndGradSum(params, this.grads, this.ws, count) : 0;
    return { grads: this.grads, loss, count, loadMs, computeMs: performance.now() - t1 };
  }

  private checkShard(count: number): void {
    if (count > this.ws.maxBatch) throw new RangeError(`shard of ${count} examples exceeds this worker's workspace of ${this.ws.maxBatch}`);
  }
}
