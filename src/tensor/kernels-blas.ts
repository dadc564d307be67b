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

/** The one command that makes OpenBLAS loadable on Debian/Ubuntu (the package CI installs). */
export const BLAS_INSTALL_COMMAND = 'apt-get install libopenblas0-pthread';

/**
 * Why the blas engine cannot run, in a few words fit for one line of the run header, and the
 * command that fixes it (null when no single command does).
 */
export class BlasUnavailable extends Error {
  override readonly name = 'BlasUnavailable';
  constructor(reason: string, readonly fix: string | null) {
    super(reason);
  }
}

let cached: BlasLibrary | BlasUnavailable | null = null;

/** Loads OpenBLAS once per thread, or returns why it cannot be loaded. */
export function loadBlas(): BlasLibrary | BlasUnavailable {
  if (cached !== null) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): BlasLibrary | BlasUnavailable {
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') {
      return new BlasUnavailable('the optional npm package koffi is not installed', 'npm install koffi');
    }
    return new BlasUnavailable(`koffi did not load (${firstLine(e)})`, null);
  }
  const failures: LoadFailure[] = [];
  for (const path of CANDIDATES) {
    let lib: KoffiLibrary;
    try {
      lib = koffi.load(path);
    } catch (e) {
      failures.push({ path, stage: 'open', message: firstLine(e) });
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
      failures.push({ path, stage: 'symbols', message: firstLine(e) });
    }
  }
  return whyNoBlas(failures);
}

/** A candidate library that could not be used: not opened, or opened without the OpenBLAS symbols. */
export interface LoadFailure { path: string; stage: 'open' | 'symbols'; message: string }

/** What the dynamic loader says when the file is simply absent (glibc, macOS, Windows). */
const NOT_FOUND = /no such file|not found|could not be found/i;

/**
 * One short reason from the failures of every candidate. Each candidate missing is the common
 * case and says only that; otherwise the first library that exists but failed is the one worth
 * naming (a wrong architecture, a BLAS without cblas_sgemm).
 */
export function whyNoBlas(failures: LoadFailure[]): BlasUnavailable {
  const real = failures.find((f) => f.stage === 'symbols' || !NOT_FOUND.test(f.message));
  const reason = real === undefined ? 'OpenBLAS is not installed'
    : real.stage === 'open' ? `${real.path} did not load (${real.message})`
    : `${real.path} is no OpenBLAS (${real.message})`;
  return new BlasUnavailable(reason, BLAS_INSTALL_COMMAND);
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
/** Rows scanned before the rest: enough for MNIST or ReLU outputs to show they are too dense to pack. */
const SCAN_PREFIX_ROWS = 64;
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
  /** A view at a byte address for sgemm (koffi passes its data pointer; the length is not used), cached. */
  const addressViews = new Map<number, Float32Array>();
  const at = (p: number): Float32Array => {
    let v = addressViews.get(p);
    if (v === undefined) {
      if (addressViews.size > 256) addressViews.clear();
      v = new Float32Array(arena.memory.buffer, p, 1);
      addressViews.set(p, v);
    }
    return v;
  };
  /**
   * [first, last] of the columns of inp[B, C] nonzero in some row, for products on wide inputs
   * (MNIST rows leave ~40 leading and ~10 trailing pixels blank even over 1024 examples: the
   * GEMM skips them, 6% of the first layer's work). Narrow inputs get the full range unscanned.
   */
  const range = { first: 0, last: 0 };
  const columnRange = (pInp: number, B: number, C: number): void => {
    range.first = 0;
    range.last = C - 1;
    if (C < PACK_MIN_C) return;
    const p = stage.scratch(8);
    k.nonzeroColumnRange(p, pInp, B, C);
    const first = arena.u32[p >> 2]! | 0;
    const last = arena.u32[(p >> 2) + 1]! | 0;
    // an all-zero input keeps one column: the product is then the bias alone, as it should be
    if (last >= first) { range.first = first; range.last = last; } else range.last = 0;
  };

  /**
   * Lists the nonzero 4-column blocks of inp[B, C] in `packed` (no allocation). The union of
   * blocks only grows with rows, so a prefix of rows that already has more than `limit` blocks
   * settles the question without reading the rest (at B = 1024 a full scan read 3.2 MB of
   * layer-one input and each hidden layer's 1 MB, per product, only to decide against packing).
   */
  const packed = { list: 0, n: 0 };
  const countBlocks = (pInp: number, B: number, C: number, limit: number): number => {
    packed.list = stage.scratch(k.listBytes(C));
    const rows = Math.min(B, SCAN_PREFIX_ROWS);
    packed.n = k.countNonzeroBlocks(pInp, rows, C, packed.list);
    if (rows < B && packed.n <= limit) packed.n = k.countNonzeroBlocks(pInp, B, C, packed.list);
    return packed.n;
  };
  /** Whether packing the nonzero blocks pays; `packed` holds them when it does. */
  const packColumns = (pInp: number, B: number, C: number): boolean => {
    if (C < PACK_MIN_C || C % 4 !== 0) return false;
    const limit = PACK_MAX_FRACTION * (C / 4);
    return countBlocks(pInp, B, C, limit) <= limit;
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
      let pack = false;
      if (C >= PACK_MIN_C && C % 4 === 0) {
        const wasmLimit = OC < 64 || B < 16 ? WASM_FORWARD_MAX_FRACTION * (C / 4) : 0;
        const packLimit = PACK_MAX_FRACTION * (C / 4);
        const n = countBlocks(pInp, B, C, Math.max(wasmLimit, packLimit));
        pack = n <= packLimit;
        if (n <= wasmLimit) {
          // narrow or short products on a sparse input: the wasm kernel, which skips the zero
          // blocks tile by tile, beat sgemm here (bench/kernels: 784x30 at B = 10 and 128)
          stage.end();
          return wasm.linearForward(out, inp, weight, bias, B, C, OC, act);
        }
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
      // out[B,OC] = inp[B,f..l] · weight[OC,f..l]ᵀ over the columns [f, l] that hold any nonzero
      columnRange(pInp, B, C);
      const { first } = range;
      const K = range.last - first + 1;
      blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS, B, OC, K, 1,
        first === 0 ? view(inp, pInp, B * C) : at(pInp + 4 * first), C,
        first === 0 ? view(weight, pW, OC * C) : at(pW + 4 * first), C, 0, view(out, pOut, B * OC), OC);
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
      // dweight[OC,f..l] += dout[B,OC]ᵀ · inp[B,f..l]: the other columns' gradient is exactly 0
      columnRange(pInp, B, C);
      const { first } = range;
      const N = range.last - first + 1;
      blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_TRANS, CBLAS_NO_TRANS, OC, N, B, 1, view(dout, pDout, B * OC), OC,
        first === 0 ? view(inp, pInp, B * C) : at(pInp + 4 * first), C,
        1, first === 0 ? view(dweight, pDw, OC * C) : at(pDw + 4 * first), C);
      k.biasGradInto(pDb, pDout, B, OC);
      stage.end();
    },
  };
}
