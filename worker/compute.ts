/**
 * What a worker does for one step, whatever the transport: gather its shard of examples into
 * the workspace, zero its gradient buffer, and compute the gradient SUM and loss SUM over the
 * shard. Pure computation: no I/O, no clocks beyond its own timing.
 */
import { PIXEL_SCALE } from '../src/data/batches.js';
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
  /** 0, 1, 2, ...: shipped rows are gathered in order */
  private readonly identity: Uint32Array;

  constructor(spec: NetworkSpec, readonly kernels: Kernels, maxShard: number) {
    this.network = new Network(spec, kernels);
    this.grads = kernels.alloc(this.network.layout.size);
    this.ws = this.network.createWorkspace(Math.max(1, maxShard));
    this.identity = new Uint32Array(this.ws.maxBatch).map((_, i) => i);
  }

  /** Gradient sums over the examples `indices` of `set` (the worker holds the data). */
  computeIndexed(params: Float32Array, set: LabelledImages, indices: ArrayLike<number>): ShardSums {
    const t0 = performance.now();
    this.checkShard(indices.length);
    const B = indices.length;
    // the gather is a kernel: in JS it cost as much as the whole forward pass at batch 10
    this.kernels.gatherScaled(this.ws.input, set.images, indices, B, set.rows * set.cols, PIXEL_SCALE);
    const labels = this.ws.labels;
    for (let b = 0; b < B; b++) labels[b] = set.labels[indices[b]!]!;
    const t1 = performance.now();
    return this.run(params, indices.length, t1 - t0, t1);
  }

  /** Gradient sums over shipped rows: `pixels` holds count × D bytes, `labels` count labels. */
  computeShipped(params: Float32Array, pixels: Uint8Array, labels: Uint8Array, count: number): ShardSums {
    const t0 = performance.now();
    this.checkShard(count);
    this.kernels.gatherScaled(this.ws.input, pixels, this.identity, count, this.network.inputSize, PIXEL_SCALE);
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
