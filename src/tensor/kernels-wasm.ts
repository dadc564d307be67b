/**
 * The wasm engine: 128-bit SIMD micro-kernels (assembly/kernels.ts, compiled by AssemblyScript)
 * working in place on buffers that live in the engine's shared WebAssembly memory. Buffers from
 * alloc() cost no copy per call; any other Float32Array (a gradient in a SharedArrayBuffer from
 * another thread, a plain array) is still computed correctly, staged through a scratch area.
 */
import type { Activation, Cost, Kernels, SgdParams } from './kernels.js';
import { allFiniteReference } from './kernels-js.js';
import { KERNELS_WASM_BASE64 } from './kernels-wasm-binary.js';
import { Staging, WasmArena } from './wasm-arena.js';

/** The exports of assembly/kernels.ts; every pointer is a byte address in the shared memory. */
export interface WasmExports {
  linearForward(out: number, inp: number, weight: number, bias: number, B: number, C: number, OC: number, act: number, list: number): void;
  linearBackwardInput(dinp: number, dout: number, weight: number, B: number, C: number, OC: number): void;
  linearBackwardParams(dweight: number, dbias: number, dout: number, inp: number, B: number, C: number, OC: number, list: number): void;
  activationBackward(d: number, a: number, n: number, act: number): void;
  outputDelta(delta: number, out: number, labels: number, B: number, K: number, cost: number): number;
  sgdUpdate(w: number, grad: number, velocity: number, n: number, eta: number, invCount: number, decay: number, momentum: number): void;
  addInto(y: number, x: number, n: number): void;
  sgdPlainSum2(w: number, a: number, b: number, n: number, eta: number, invCount: number): void;
  allFinite(x: number, n: number): number;
  scaleBytes(dst: number, src: number, n: number, scale: number): void;
  gatherRows(dst: number, images: number, indices: number, B: number, D: number, scale: number): number;
  zero(x: number, n: number): void;
  biasActivate(out: number, bias: number, B: number, OC: number, act: number): void;
  biasGradInto(dbias: number, dout: number, B: number, OC: number): void;
  countNonzeroBlocks(inp: number, B: number, C: number, list: number): number;
  countNonzeros(x: number, n: number): number;
  listBytes(C: number): number;
  sparseScratchBytes(B: number, C: number, OC: number): number;
  linearForwardSparse(out: number, inp: number, weight: number, bias: number, B: number, C: number, OC: number, act: number, scratch: number): void;
  linearBackwardParamsSparse(dweight: number, dbias: number, dout: number, inp: number, B: number, C: number, OC: number, scratch: number): void;
  packBlocks(dst: number, src: number, R: number, C: number, list: number, n: number): void;
  unpackAddBlocks(dst: number, src: number, R: number, C: number, list: number, n: number): void;
  nonzeroColumnRange(range: number, inp: number, B: number, C: number): void;
}

/** Data sets of at least this size are copied into the engine's memory for the batch gather, up to the total. */
const RESIDENT_MIN_BYTES = 1 << 20;
const RESIDENT_MAX_BYTES = 256 << 20;

/** Inputs narrower than this are never checked for sparsity: the products are too small to care. */
const SPARSE_MIN_C = 64;

/**
 * Whether to visit only the nnz nonzero inputs instead of running the dense kernel (which
 * already skips 4-column blocks that are zero in a whole tile). Measured on MNIST rows with
 * interleaved repetitions (see docs/kernels.md): the sparse kernels win 2-2.7x on 784x256 at
 * B >= 128 but lose on 784x30, where transposing the weights costs as much as the product.
 * So: wide outputs only, and clearly sparse inputs.
 */
export function sparsePays(B: number, C: number, OC: number, nnz: number): boolean {
  return C >= SPARSE_MIN_C && OC >= 64 && B >= 16 && nnz < 0.4 * B * C;
}

export const ACT_CODE: Record<Activation, number> = { identity: 0, sigmoid: 1, relu: 2, tanh: 3 };
export const COST_CODE: Record<Cost, number> = { quadratic: 0, 'cross-entropy': 1 };

let compiled: WebAssembly.Module | null = null;

/** Compiles the module once per thread; throws a clear error where WebAssembly SIMD is missing. */
export function wasmModule(): WebAssembly.Module {
  if (compiled === null) {
    const bytes = Buffer.from(KERNELS_WASM_BASE64, 'base64');
    try {
      compiled = new WebAssembly.Module(bytes);
    } catch (e) {
      throw new Error(`the wasm engine needs WebAssembly SIMD and threads (Node >= 20): ${(e as Error).message}; use --kernels js`);
    }
  }
  return compiled;
}

/**
 * Uses a module compiled in another thread (posted to this one) instead of compiling again:
 * threads of one process then share the compiled code, including what V8 has already
 * optimised, so a new worker thread starts with warm kernels.
 */
export function adoptWasmModule(module: WebAssembly.Module): void {
  compiled ??= module;
}

/** The engine's memory, staging area and instantiated kernels: shared by the wasm and blas engines. */
export class WasmCore {
  readonly arena = new WasmArena();
  readonly stage = new Staging(this.arena);
  readonly k: WasmExports;

  constructor() {
    const instance = new WebAssembly.Instance(wasmModule(), { env: { memory: this.arena.memory } });
    this.k = instance.exports as unknown as WasmExports;
  }
}

/** Builds the wasm engine (one per thread: each has its own memory). */
export function createWasmKernels(core: WasmCore = new WasmCore()): Kernels & { readonly core: WasmCore } {
  const { k, stage, arena } = core;
  // The data set a worker gathers from step after step is copied into this memory once (39 MB
  // for MNIST's training images, ~35 ms) at setup through holdImages(), or else when the same
  // array comes a second time (the first steps then pay for it); then a batch
  // gather is one wasm call instead of a JS loop over rows. Per-step arrays (shipped pixels)
  // change identity every call and are never copied.
  let lastImages: Uint8Array | null = null;
  let plainImages: Uint8Array = new Uint8Array(0);
  const resident = new WeakMap<Uint8Array, number>();
  let residentBytes = 0;
  const plain = (images: Uint8Array): Uint8Array => {
    if (images !== lastImages) {
      // a Node Buffer's subarray() goes through a slow path: slice a plain view instead
      plainImages = images.constructor === Uint8Array ? images : new Uint8Array(images.buffer, images.byteOffset, images.length);
    }
    return plainImages;
  };
  /** Copies `images` into this memory when its size qualifies; its address, or -1. */
  const makeResident = (images: Uint8Array): number => {
    if (images.length < RESIDENT_MIN_BYTES || residentBytes + images.length > RESIDENT_MAX_BYTES) return -1;
    const p = arena.allocBytes(images.length);
    arena.u8.set(plain(images), p);
    lastImages = images;
    resident.set(images, p);
    residentBytes += images.length;
    return p;
  };
  const residentCopy = (images: Uint8Array): number => {
    const ptr = resident.get(images);
    if (ptr !== undefined) return ptr;
    if (images === lastImages) return makeResident(images);
    plain(images);
    lastImages = images;
    return -1;
  };
  return {
    name: 'wasm',
    core,
    alloc: (length) => arena.allocF32(length),

    linearForward(out, inp, weight, bias, B, C, OC, act) {
      stage.begin();
      const pInp = stage.input(inp, B * C, 'inp');
      const pW = stage.input(weight, OC * C, 'weight');
      const pBias = stage.input(bias, OC, 'bias');
      const pOut = stage.output(out, B * OC, 'out', false);
      if (OC >= 64 && C >= SPARSE_MIN_C && B >= 16 && sparsePays(B, C, OC, k.countNonzeros(pInp, B * C))) {
        k.linearForwardSparse(pOut, pInp, pW, pBias, B, C, OC, ACT_CODE[act], stage.scratch(k.sparseScratchBytes(B, C, OC)));
      } else {
        k.linearForward(pOut, pInp, pW, pBias, B, C, OC, ACT_CODE[act], stage.scratch(k.listBytes(C)));
      }
      stage.end();
    },

    linearBackwardInput(dinp, dout, weight, B, C, OC) {
      stage.begin();
      const pDout = stage.input(dout, B * OC, 'dout');
      const pW = stage.input(weight, OC * C, 'weight');
      const pDinp = stage.output(dinp, B * C, 'dinp', false);
      k.linearBackwardInput(pDinp, pDout, pW, B, C, OC);
      stage.end();
    },

    linearBackwardParams(dweight, dbias, dout, inp, B, C, OC) {
      stage.begin();
      const pDout = stage.input(dout, B * OC, 'dout');
      const pInp = stage.input(inp, B * C, 'inp');
      const pDw = stage.output(dweight, OC * C, 'dweight', true);
      const pDb = stage.output(dbias, OC, 'dbias', true);
      if (OC >= 64 && C >= SPARSE_MIN_C && B >= 16 && sparsePays(B, C, OC, k.countNonzeros(pInp, B * C))) {
        k.linearBackwardParamsSparse(pDw, pDb, pDout, pInp, B, C, OC, stage.scratch(k.sparseScratchBytes(B, C, OC)));
      } else {
        k.linearBackwardParams(pDw, pDb, pDout, pInp, B, C, OC, stage.scratch(k.listBytes(C)));
      }
      stage.end();
    },

    activationBackward(d, a, n, act) {
      stage.begin();
      const pA = stage.input(a, n, 'a');
      const pD = stage.output(d, n, 'd', true);
      k.activationBackward(pD, pA, n, ACT_CODE[act]);
      stage.end();
    },

    outputDelta(delta, out, labels, B, K, cost) {
      stage.begin();
      const pOut = stage.input(out, B * K, 'out');
      const pLabels = stage.bytes(labels, B, 'labels');
      const pDelta = stage.output(delta, B * K, 'delta', false);
      const loss = k.outputDelta(pDelta, pOut, pLabels, B, K, COST_CODE[cost]);
      stage.end();
      return loss;
    },

    sgdUpdate(w, grad, velocity, n, p: SgdParams) {
      stage.begin();
      const pG = stage.input(grad, n, 'grad');
      const pW = stage.output(w, n, 'w', true);
      const useV = p.momentum !== 0;
      if (useV && velocity === null) throw new Error('sgdUpdate with momentum needs a velocity buffer');
      const pV = useV ? stage.output(velocity!, n, 'velocity', true) : 0;
      k.sgdUpdate(pW, pG, pV, n, p.eta, p.invCount, p.decay, p.momentum);
      stage.end();
    },

    allFinite(x, n) {
      if (x.length < n) throw new RangeError(`allFinite: buffer has ${x.length} floats but the call needs ${n}`);
      // in place when the floats live in this engine's memory (received tensors are copied there)
      if (arena.owns(x)) return k.allFinite(x.byteOffset, n) === 1;
      return allFiniteReference(x, n);
    },

    sgdPlainSum2(w, a, b, n, eta, invCount) {
      stage.begin();
      const pA = stage.input(a, n, 'a');
      const pB = stage.input(b, n, 'b');
      const pW = stage.output(w, n, 'w', true);
      k.sgdPlainSum2(pW, pA, pB, n, eta, invCount);
      stage.end();
    },

    addInto(y, x, n) {
      stage.begin();
      const pX = stage.input(x, n, 'x');
      const pY = stage.output(y, n, 'y', true);
      k.addInto(pY, pX, n);
      stage.end();
    },

    zero(x, n) {
      if (x.length < n) throw new RangeError(`zero: buffer has ${x.length} floats but the call needs ${n}`);
      // memory.fill: TypedArray.fill on a SharedArrayBuffer takes a slow path in V8
      if (arena.owns(x)) k.zero(x.byteOffset, n);
      else x.fill(0, 0, n);
    },

    holdImages(images) {
      if (!resident.has(images)) makeResident(images);
    },

    gatherScaled(dst, images, indices, B, D, scale) {
      for (let b = 0; b < B; b++) {
        if ((indices[b]! + 1) * D > images.length) throw new RangeError(`gather: row ${indices[b]} is outside the ${images.length / D} images`);
      }
      const resident = residentCopy(images);
      stage.begin();
      const pDst = stage.output(dst, B * D, 'dst', false);
      if (resident >= 0) {
        const pIdx = stage.scratch(B * 4);
        const u32 = arena.u32;
        for (let b = 0; b < B; b++) u32[(pIdx >> 2) + b] = indices[b]!;
        k.gatherRows(pDst, resident, pIdx, B, D, scale);
      } else {
        // the selected rows are copied next to each other (native memcpy per row), then converted at once
        const pSrc = stage.scratch(B * D);
        const u8 = arena.u8;
        for (let b = 0; b < B; b++) {
          const src = indices[b]! * D;
          u8.set(plain(images).subarray(src, src + D), pSrc + b * D);
        }
        k.scaleBytes(pDst, pSrc, B * D, scale);
      }
      stage.end();
    },
  };
}
