/**
 * The kernel interface: the handful of primitive operations a training step is made of.
 * Conventions (after llm.c): outputs first, dimensions explicit — B (batch), C (in features),
 * OC (out features) — row-major, weights stored [OC, C] like torch.nn.Linear. Forward kernels
 * overwrite their output; backward kernels that produce parameter gradients ACCUMULATE (+=),
 * zeroing is a separate call. No kernel allocates.
 *
 * Buffers from an engine's alloc() are used in place: the wasm and blas engines keep them in
 * their WebAssembly memory, so no call copies anything in or out. Any other Float32Array (a
 * gradient in a SharedArrayBuffer from another thread) still gives the right result, staged
 * through a scratch area at the cost of a copy. See docs/kernels.md.
 */

export type Activation = 'sigmoid' | 'relu' | 'tanh' | 'identity';
export type HiddenActivation = Exclude<Activation, 'identity'>;
/** quadratic: sigmoid outputs, C = ½‖a − y‖² (Nielsen ch. 1); cross-entropy: softmax outputs, C = −ln a_y. */
export type Cost = 'quadratic' | 'cross-entropy';
export type EngineName = 'js' | 'wasm' | 'blas';

export interface SgdParams {
  /** learning rate η */
  eta: number;
  /** 1/m: gradients arrive as sums over m examples and are scaled once, here */
  invCount: number;
  /** λ/n for this range (0 for biases): the gradient gains decay·w (L2, Nielsen ch. 3) */
  decay: number;
  /** μ; 0 means plain SGD and the velocity buffer is not touched */
  momentum: number;
}

export interface Kernels {
  readonly name: EngineName;
  /** A zeroed buffer this engine can operate on in place. Lives as long as the engine. */
  alloc(length: number): Float32Array;

  /** out[B,OC] = act(inp[B,C] · weight[OC,C]ᵀ + bias[OC]) */
  linearForward(out: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array,
    B: number, C: number, OC: number, act: Activation): void;

  /** dinp[B,C] = dout[B,OC] · weight[OC,C]   (overwrites dinp) */
  linearBackwardInput(dinp: Float32Array, dout: Float32Array, weight: Float32Array,
    B: number, C: number, OC: number): void;

  /** dweight[OC,C] += dout[B,OC]ᵀ · inp[B,C];  dbias[OC] += Σ_b dout[b,:] */
  linearBackwardParams(dweight: Float32Array, dbias: Float32Array, dout: Float32Array, inp: Float32Array,
    B: number, C: number, OC: number): void;

  /** d[i] *= act'(z_i), written in terms of the activation's output a = act(z) (first n entries) */
  activationBackward(d: Float32Array, a: Float32Array, n: number, act: Activation): void;

  /**
   * The output layer's error δ = ∂C/∂z for B examples with K classes, and the loss SUM.
   * quadratic: `out` holds sigmoid outputs a, δ = (a − y) ⊙ a(1 − a), loss ½‖a − y‖².
   * cross-entropy: `out` holds logits z, δ = softmax(z) − y, loss −ln softmax(z)_y.
   */
  outputDelta(delta: Float32Array, out: Float32Array, labels: Uint8Array, B: number, K: number, cost: Cost): number;

  /** One SGD step on a range: g = grad·invCount + decay·w; v = μv − ηg, w += v (or w −= ηg when μ = 0). */
  sgdUpdate(w: Float32Array, grad: Float32Array, velocity: Float32Array | null, n: number, p: SgdParams): void;

  /** y[i] += x[i] for the first n entries: the gradient reduction. */
  addInto(y: Float32Array, x: Float32Array, n: number): void;

  /**
   * Plain SGD (no momentum, no decay) on the sum of two gradient sums, in one pass: bit for bit
   * what addInto(a, b, n) followed by sgdUpdate(w, a, null, n, {eta, invCount, decay 0, momentum 0})
   * computes, without writing a. The coordinator's update with two or more workers.
   */
  sgdPlainSum2(w: Float32Array, a: Float32Array, b: Float32Array, n: number, eta: number, invCount: number): void;

  /** True when none of the first n entries is NaN or ±Infinity (received tensors are checked with it). */
  allFinite(x: Float32Array, n: number): boolean;

  /** Sets the first n entries to zero. */
  zero(x: Float32Array, n: number): void;

  /**
   * The batch gather: dst[b, :] = images[indices[b]·D, +D) · scale for b < B, bytes to floats
   * (pixels 0..255 to inputs 0..1). `images` may live anywhere and is only read; an engine may
   * keep a copy of a data set it is handed repeatedly, so its contents must not change.
   */
  gatherScaled(dst: Float32Array, images: Uint8Array, indices: ArrayLike<number>, B: number, D: number, scale: number): void;

  /**
   * Setup, not a step: `images` is the data set the steps will gather from. An engine that
   * keeps a copy of such a set makes it now (the wasm engines: ~35 ms for MNIST's 39 MB, which
   * otherwise lands in the first steps' time); the others do nothing. Same rule as
   * gatherScaled: its contents must not change afterwards.
   */
  holdImages(images: Uint8Array): void;
}
