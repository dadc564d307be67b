/**
 * Mini-batch SGD with Nielsen's update rule, w ← w − (η/m) Σ_x ∇C_x, where the gradient arrives
 * as a SUM over the m examples of the step and is scaled exactly once, here. Optional extras
 * from chapter 3, each a separate term of the same update:
 *   L2 weight decay λ: weights (not biases) gain (λ/n)·w in the gradient, n = training-set size,
 *     so plain SGD becomes w ← (1 − ηλ/n) w − (η/m) Σ ∇C_x;
 *   momentum μ: v ← μv − η·g, w ← w + v (velocity kept in the parameter layout).
 */
import type { Kernels, SgdParams } from '../tensor/kernels.js';
import type { ParamLayout } from '../tensor/layout.js';

export interface SgdOptions {
  eta: number;
  momentum: number;
  /** λ of L2 regularisation (0 = off) */
  weightDecay: number;
  /** n, the number of training examples, which divides λ */
  trainSize: number;
}

export class Sgd {
  /** Velocity for momentum, in the parameter layout; null when μ = 0. */
  readonly velocity: Float32Array | null;
  /** A copy of the options given: setEta changes η here, never in the caller's object. */
  readonly options: SgdOptions;

  constructor(private readonly layout: ParamLayout, private readonly kernels: Kernels, options: SgdOptions) {
    validateSgd(options);
    this.options = { ...options };
    this.velocity = options.momentum !== 0 ? kernels.alloc(layout.size) : null;
  }

  /**
   * Sets η for the steps that follow (a learning-rate schedule sets it before every step). The
   * same number gives the same bits as never calling it.
   */
  setEta(eta: number): void {
    if (!(Number.isFinite(eta) && eta > 0)) throw new RangeError(`eta must be a positive number, got ${eta}`);
    this.options.eta = eta;
    if (this.cached) for (const r of this.cached.runs) r.p.eta = eta;
  }

  /**
   * True for plain SGD (no momentum, no weight decay): then step() can take the gradient sum as
   * two parts and add them on the way (one pass over memory for the coordinator's reduction and
   * update instead of two).
   */
  get plain(): boolean {
    return this.options.momentum === 0 && this.options.weightDecay === 0;
  }

  /**
   * Applies one step to params from the gradient SUM over `count` examples. With `plus` (plain
   * SGD only), the sum is gradSum + plus, added in that order inside the update: the same bits as
   * adding plus into gradSum first, and gradSum is left as it was.
   */
  step(params: Float32Array, gradSum: Float32Array, count: number, plus: Float32Array | null = null): void {
    if (!(count > 0)) throw new RangeError(`an SGD step needs at least one example, got ${count}`);
    if (plus !== null) {
      if (!this.plain) throw new Error('a step on a gradient sum in two parts needs plain SGD (no momentum, no weight decay)');
      const n = this.layout.size;
      this.kernels.sgdPlainSum2(params, gradSum, plus, n, this.options.eta, 1 / count);
      return;
    }
    const runs = this.runsFor(params, gradSum);
    for (const r of runs) {
      r.p.invCount = 1 / count;
      this.kernels.sgdUpdate(r.w, r.g, r.v, r.n, r.p);
    }
  }

  /**
   * The update split into runs of consecutive tensors that share a decay (all of them when λ = 0),
   * with their views and parameters built once per (params, grads) pair: the step allocates nothing.
   */
  private runsFor(params: Float32Array, gradSum: Float32Array): SgdRun[] {
    if (this.cached && this.cached.params === params && this.cached.grads === gradSum) return this.cached.runs;
    const { eta, momentum, weightDecay, trainSize } = this.options;
    const runs: SgdRun[] = [];
    let start = 0;
    const tensors = this.layout.tensors;
    for (let i = 0; i < tensors.length; i++) {
      const decay = tensors[i]!.decays ? weightDecay / trainSize : 0;
      const next = tensors[i + 1];
      const nextDecay = next === undefined ? NaN : next.decays ? weightDecay / trainSize : 0;
      if (nextDecay === decay) continue;
      const end = tensors[i]!.offset + tensors[i]!.size;
      runs.push({
        w: params.subarray(start, end), g: gradSum.subarray(start, end),
        v: this.velocity ? this.velocity.subarray(start, end) : null, n: end - start,
        p: { eta, invCount: 1, decay, momentum },
      });
      start = end;
    }
    this.cached = { params, grads: gradSum, runs };
    return runs;
  }

  private cached: { params: Float32Array; grads: Float32Array; runs: SgdRun[] } | null = null;
}

interface SgdRun {
  w: Float32Array;
  g: Float32Array;
  v: Float32Array | null;
  n: number;
  p: SgdParams;
}

export function validateSgd(o: SgdOptions): void {
  if (!(Number.isFinite(o.eta) && o.eta > 0)) throw new RangeError(`eta must be a positive number, got ${o.eta}`);
  if (!(Number.isFinite(o.momentum) && o.momentum >= 0 && o.momentum < 1)) throw new RangeError(`momentum must be in [0, 1), got ${o.momentum}`);
  if (!(Number.isFinite(o.weightDecay) && o.weightDecay >= 0)) throw new RangeError(`weight decay must be >= 0, got ${o.weightDecay}`);
  if (!(Number.isInteger(o.trainSize) && o.trainSize > 0)) throw new RangeError(`trainSize must be a positive integer, got ${o.trainSize}`);
}
