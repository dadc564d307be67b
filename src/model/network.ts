/**
 * Batched forward and backward passes of a fully connected network over one flat parameter
 * buffer. All activations live in a Workspace preallocated for the largest batch and passed in
 * explicitly; nothing is stashed between calls and nothing is allocated per step.
 */
import type { Activation, Kernels } from '../tensor/kernels.js';
import type { ParamLayout } from '../tensor/layout.js';
import { layoutFor, type NetworkSpec } from './spec.js';
import type { LabelledImages } from '../data/idx.js';
import { PIXEL_SCALE } from '../data/batches.js';

export interface Workspace {
  readonly maxBatch: number;
  /** input rows [maxBatch, sizes[0]], filled by the data loader */
  readonly input: Float32Array;
  /** labels of the rows in input */
  readonly labels: Uint8Array;
  /** acts[l] = output of layer l, [maxBatch, sizes[l + 1]] */
  readonly acts: Float32Array[];
  /** two scratch buffers for δ, ping-ponged going backwards, each [maxBatch, max hidden width] */
  readonly deltas: [Float32Array, Float32Array];
}

interface LayerViews {
  C: number;
  OC: number;
  weight: Float32Array;
  bias: Float32Array;
}

export class Network {
  readonly layout: ParamLayout;
  readonly inputSize: number;
  readonly classes: number;
  private readonly nLayers: number;

  constructor(readonly spec: NetworkSpec, readonly kernels: Kernels) {
    this.layout = layoutFor(spec);
    this.inputSize = spec.sizes[0]!;
    this.classes = spec.sizes[spec.sizes.length - 1]!;
    this.nLayers = spec.sizes.length - 1;
  }

  /** A flat buffer with this network's layout, allocated by the kernel engine. */
  allocParams(): Float32Array {
    return this.kernels.alloc(this.layout.size);
  }

  createWorkspace(maxBatch: number): Workspace {
    const k = this.kernels;
    const widest = Math.max(...this.spec.sizes.slice(1));
    return {
      maxBatch,
      input: k.alloc(maxBatch * this.inputSize),
      labels: new Uint8Array(maxBatch),
      acts: this.spec.sizes.slice(1).map((n) => k.alloc(maxBatch * n)),
      deltas: [k.alloc(maxBatch * widest), k.alloc(maxBatch * widest)],
    };
  }

  /** Output activations of the last layer for the first B rows of ws.input. */
  forward(params: Float32Array, ws: Workspace, B: number): Float32Array {
    checkBatch(ws, B);
    let inp = ws.input;
    for (let l = 0; l < this.nLayers; l++) {
      const v = this.layer(params, l);
      const out = ws.acts[l]!;
      this.kernels.linearForward(out, inp, v.weight, v.bias, B, v.C, v.OC, this.activationOf(l));
      inp = out;
    }
    return ws.acts[this.nLayers - 1]!;
  }

  /**
   * Forward and backward over the first B rows of ws.input / ws.labels: ADDS the gradient sum
   * Σ_x ∇C_x into grads (zero it first for a fresh step) and returns the loss sum Σ_x C_x.
   */
  lossAndGradSum(params: Float32Array, grads: Float32Array, ws: Workspace, B: number): number {
    const k = this.kernels;
    const out = this.forward(params, ws, B);
    let delta = ws.deltas[0];
    let spare = ws.deltas[1];
    const loss = k.outputDelta(delta, out, ws.labels, B, this.classes, this.spec.cost);
    for (let l = this.nLayers - 1; l >= 0; l--) {
      const v = this.layer(params, l);
      const g = this.layer(grads, l);
      const inp = l === 0 ? ws.input : ws.acts[l - 1]!;
      k.linearBackwardParams(g.weight, g.bias, delta, inp, B, v.C, v.OC);
      if (l > 0) {
        // δ^{l-1} = (δ^l · W^l) ⊙ σ'(z^{l-1})
        k.linearBackwardInput(spare, delta, v.weight, B, v.C, v.OC);
        k.activationBackward(spare, inp, B * v.C, this.spec.activation);
        [delta, spare] = [spare, delta];
      }
    }
    return loss;
  }

  /** Number of the first `count` examples of `set` whose arg-max output equals the label. Pure: reads params, writes only ws. */
  evaluate(params: Float32Array, ws: Workspace, set: LabelledImages, count = set.count): number {
    let correct = 0;
    // the gather is a kernel (bytes to floats in SIMD; in JS it cost ~70 ms per 10,000 images)
    const indices = new Uint32Array(ws.maxBatch);
    for (let start = 0; start < count; start += ws.maxBatch) {
      const B = Math.min(ws.maxBatch, count - start);
      for (let b = 0; b < B; b++) indices[b] = start + b;
      this.kernels.gatherScaled(ws.input, set.images, indices, B, this.inputSize, PIXEL_SCALE);
      ws.labels.set(set.labels.subarray(start, start + B));
      const out = this.forward(params, ws, B);
      for (let b = 0; b < B; b++) {
        if (argmax(out, b * this.classes, this.classes) === ws.labels[b]) correct++;
      }
    }
    return correct;
  }

  private activationOf(l: number): Activation {
    if (l < this.nLayers - 1) return this.spec.activation;
    return this.spec.cost === 'quadratic' ? 'sigmoid' : 'identity';
  }

  private layer(buf: Float32Array, l: number): LayerViews {
    // Views are cheap (no copy) but not free; cache per buffer identity.
    let cache = this.viewCache.get(buf);
    if (!cache) {
      cache = [];
      for (let i = 0; i < this.nLayers; i++) {
        const w = this.layout.tensors[2 * i]!;
        const b = this.layout.tensors[2 * i + 1]!;
        cache.push({
          C: w.shape[1]!, OC: w.shape[0]!,
          weight: buf.subarray(w.offset, w.offset + w.size),
          bias: buf.subarray(b.offset, b.offset + b.size),
        });
      }
      this.viewCache.set(buf, cache);
    }
    return cache[l]!;
  }

  private readonly viewCache = new WeakMap<Float32Array, LayerViews[]>();
}

function checkBatch(ws: Workspace, B: number): void {
  if (!(B >= 1 && B <= ws.maxBatch)) throw new RangeError(`batch of ${B} does not fit a workspace of ${ws.maxBatch}`);
}

export function argmax(x: Float32Array, offset: number, n: number): number {
  let best = 0;
  let bestValue = x[offset]!;
  for (let i = 1; i < n; i++) {
    if (x[offset + i]! > bestValue) { bestValue = x[offset + i]!; best = i; }
  }
  return best;
}
