/**
 * The blas engine: the wasm engine with its large matrix products handed to the system's
 * OpenBLAS sgemm through koffi (an FFI package that ships prebuilt binaries). Buffers still live
 * in the wasm engine's shared memory — sgemm reads and writes them in place through the typed
 * arrays' pointers — and everything element-wise (bias, activations, δ, SGD) stays in wasm.
 * OpenBLAS is held to one thread: parallelism is dpt's job, not the library's.
 */
import { createRequire } from 'node:module';
import type { Kernels } from './kernels.js';
import { ACT_CODE, createWasmKernels, WasmCore } from './kernels-wasm.js';

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

type Sgemm = (order: number, ta: number, tb: number, M: number, N: number, K: number, alpha: number,
  A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number) => void;

/** The part of koffi's API used here (declared locally: koffi is an optional dependency). */
interface KoffiLibrary { func(signature: string): unknown }
interface Koffi { load(path: string): KoffiLibrary }

export interface BlasLibrary {
  sgemm: Sgemm;
  /** e.g. "OpenBLAS 0.3.21 ... Haswell", for the run header */
  description: string;
  path: string;
}

/** Library names tried in order: Debian's libopenblas0(-pthread|-serial) all provide the first. */
const CANDIDATES = ['libopenblas.so.0', 'libopenblas.so', 'libopenblas.dylib', 'libopenblas.dll'];

export const BLAS_INSTALL_HINT = 'install OpenBLAS (Debian/Ubuntu: apt-get install libopenblas0) and the optional npm dependency koffi (npm install koffi)';

let cached: BlasLibrary | Error | null = null;

/** Loads OpenBLAS once per thread, or returns why it cannot be loaded. */
export function loadBlas(): BlasLibrary | Error {
  if (cached !== null) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): BlasLibrary | Error {
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (e) {
    return new Error(`the FFI package koffi is not installed (${firstLine(e)})`);
  }
  const failures: string[] = [];
  for (const path of CANDIDATES) {
    let lib: KoffiLibrary;
    try {
      lib = koffi.load(path);
    } catch (e) {
      failures.push(`${path}: ${firstLine(e)}`);
      continue;
    }
    try {
      const sgemm = lib.func('void cblas_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)') as Sgemm;
      const setThreads = lib.func('void openblas_set_num_threads(int n)') as (n: number) => void;
      setThreads(1);
      let description = 'OpenBLAS';
      try {
        const config = (lib.func('const char *openblas_get_config()') as () => string)();
        const core = (lib.func('const char *openblas_get_corename()') as () => string)();
        description = `${config.split(' ').slice(0, 2).join(' ')} (${core} kernels, 1 thread)`;
      } catch {
        // older OpenBLAS builds lack these; the description stays generic
      }
      return { sgemm, description, path };
    } catch (e) {
      failures.push(`${path}: no OpenBLAS cblas_sgemm (${firstLine(e)})`);
    }
  }
  return new Error(`no OpenBLAS library found (${failures.join('; ')})`);
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/**
 * Below this many multiply-adds a product stays in wasm: the FFI call (~0.5 µs) and OpenBLAS's
 * packing cost more than they save on the small layers (bench/kernels measures the crossover).
 */
export const BLAS_MIN_MACS = 64 * 1024;

/**
 * Pack the nonzero column blocks of a sparse input before the GEMM when at most this fraction of
 * its 4-column blocks is nonzero. MNIST batches have 58% at B = 10, 80% at 128, 89% at 1024;
 * packing reads the input and weights and writes them again, which on this machine cost more
 * than the GEMM saved at 89% (profiled at B = 1024) and about as much at 80%: so small batches only.
 */
export const PACK_MAX_FRACTION = 0.7;
/** Forward products with a sparser input than this (nonzero block fraction) and OC < 64 or B < 16 stay in wasm. */
const WASM_FORWARD_MAX_FRACTION = 0.85;
/** Narrower inputs are not worth scanning. */
const PACK_MIN_C = 256;

/**
 * Short and narrow products (784-30-10's first layer at batch 10) go to the wasm kernels before
 * any sparsity scan: there sgemm lost to them in forward (by the scan, ~2 µs) and in the weight
 * gradient (28 vs 16 µs at 10x784x30; at 16 rows the two were even). Wide or long ones still
 * reach sgemm, which won at 10x784x256 and 10x256x256.
 */
function wasmWins(B: number, OC: number): boolean {
  return B < 16 && OC < 64;
}

/** Builds the blas engine on top of a wasm core; throws when OpenBLAS cannot be loaded. */
export function createBlasKernels(lib?: BlasLibrary): Kernels & { readonly core: WasmCore; readonly blas: BlasLibrary } {
  const loaded = lib ?? loadBlas();
  if (loaded instanceof Error) throw loaded;
  const blas = loaded;
  const wasm = createWasmKernels();
  const { core } = wasm;
  const { k, stage, arena } = core;
  /** The typed array sgemm should use for an argument: itself when it lives here, else a view of its staged copy. */
  const view = (a: Float32Array, p: number, n: number): Float32Array =>
    arena.owns(a) && a.byteOffset === p ? a : new Float32Array(arena.memory.buffer, p, n);
  // Views of the packing scratch, cached by address: the scratch region is reused call after
  // call, so after the first steps no view is created.
  const scratchViews = new Map<number, Float32Array>();
  const scratchView = (p: number, n: number): Float32Array => {
    let v = scratchViews.get(p);
    if (v === undefined || v.length !== n) {
      if (scratchViews.size > 64) scratchViews.clear();
      v = new Float32Array(arena.memory.buffer, p, n);
      scratchViews.set(p, v);
    }
    return v;
  };
  /** Lists the nonzero 4-column blocks of inp[B, C] in `packed` (no allocation); false when packing does not pay. */
  const packed = { list: 0, n: 0 };
  const packColumns = (pInp: number, B: number, C: number): boolean => {
    packed.n = C >> 2;
    if (C < PACK_MIN_C || C % 4 !== 0) return false;
    packed.list = stage.scratch(k.listBytes(C));
    packed.n = k.countNonzeroBlocks(pInp, B, C, packed.list);
    return packed.n <= PACK_MAX_FRACTION * (C / 4);
  };

  return {
    ...wasm,
    name: 'blas',
    core,
    blas,

    linearForward(out, inp, weight, bias, B, C, OC, act) {
      if (B * C * OC < BLAS_MIN_MACS || wasmWins(B, OC)) return wasm.linearForward(out, inp, weight, bias, B, C, OC, act);
      stage.begin();
      const pInp = stage.input(inp, B * C, 'inp');
      const pW = stage.input(weight, OC * C, 'weight');
      const pBias = stage.input(bias, OC, 'bias');
      const pack = packColumns(pInp, B, C);
      if ((OC < 64 || B < 16) && C >= PACK_MIN_C && packed.n <= WASM_FORWARD_MAX_FRACTION * (C / 4)) {
        // narrow or short products on a sparse input: the wasm kernel, which skips the zero
        // blocks tile by tile, beat sgemm here (bench/kernels: 784x30 at B = 10 and 128)
        stage.end();
        return wasm.linearForward(out, inp, weight, bias, B, C, OC, act);
      }
      const pOut = stage.output(out, B * OC, 'out', false);
      if (pack) {
        // out = inp[:, blocks] · weight[:, blocks]ᵀ: the zero columns contribute nothing
        const K = 4 * packed.n;
        const pX = stage.scratch(B * K * 4);
        const pWc = stage.scratch(OC * K * 4);
        k.packBlocks(pX, pInp, B, C, packed.list, packed.n);
        k.packBlocks(pWc, pW, OC, C, packed.list, packed.n);
        blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS, B, OC, K, 1,
          scratchView(pX, B * K), K, scratchView(pWc, OC * K), K, 0, view(out, pOut, B * OC), OC);
        k.biasActivate(pOut, pBias, B, OC, ACT_CODE[act]);
        stage.end();
        return;
      }
      // out[B,OC] = inp[B,C] · weight[OC,C]ᵀ
      blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS, B, OC, C, 1,
        view(inp, pInp, B * C), C, view(weight, pW, OC * C), C, 0, view(out, pOut, B * OC), OC);
      k.biasActivate(pOut, pBias, B, OC, ACT_CODE[act]);
      stage.end();
    },

    linearBackwardInput(dinp, dout, weight, B, C, OC) {
      if (B * C * OC < BLAS_MIN_MACS) return wasm.linearBackwardInput(dinp, dout, weight, B, C, OC);
      stage.begin();
      const pDout = stage.input(dout, B * OC, 'dout');
      const pW = stage.input(weight, OC * C, 'weight');
      const pDinp = stage.output(dinp, B * C, 'dinp', false);
      // dinp[B,C] = dout[B,OC] · weight[OC,C]
      blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, B, C, OC, 1,
        view(dout, pDout, B * OC), OC, view(weight, pW, OC * C), C, 0, view(dinp, pDinp, B * C), C);
      stage.end();
    },

    linearBackwardParams(dweight, dbias, dout, inp, B, C, OC) {
      if (B * C * OC < BLAS_MIN_MACS || wasmWins(B, OC)) return wasm.linearBackwardParams(dweight, dbias, dout, inp, B, C, OC);
      stage.begin();
      const pDout = stage.input(dout, B * OC, 'dout');
      const pInp = stage.input(inp, B * C, 'inp');
      const pDw = stage.output(dweight, OC * C, 'dweight', true);
      const pDb = stage.output(dbias, OC, 'dbias', true);
      if (packColumns(pInp, B, C)) {
        // only the nonzero column blocks of dweight change: compute them packed, add them back
        const K = 4 * packed.n;
        const pX = stage.scratch(B * K * 4);
        const pG = stage.scratch(OC * K * 4);
        k.packBlocks(pX, pInp, B, C, packed.list, packed.n);
        blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_TRANS, CBLAS_NO_TRANS, OC, K, B, 1,
          view(dout, pDout, B * OC), OC, scratchView(pX, B * K), K, 0, scratchView(pG, OC * K), K);
        k.unpackAddBlocks(pDw, pG, OC, C, packed.list, packed.n);
        k.biasGradInto(pDb, pDout, B, OC);
        stage.end();
        return;
      }
      // dweight[OC,C] += dout[B,OC]ᵀ · inp[B,C]
      blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_TRANS, CBLAS_NO_TRANS, OC, C, B, 1,
        view(dout, pDout, B * OC), OC, view(inp, pInp, B * C), C, 1, view(dweight, pDw, OC * C), C);
      k.biasGradInto(pDb, pDout, B, OC);
      stage.end();
    },
  };
}
