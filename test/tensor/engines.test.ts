import { beforeAll, describe, expect, it } from 'vitest';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';
import { createBlasKernels, loadBlas, type BlasLibrary } from '../../src/tensor/kernels-blas.js';
import type { Activation, Cost, Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { blasMissing, skipNote } from '../helpers/environment.js';

const ref = createJsKernels();

interface EngineUnderTest {
  name: string;
  make: () => Kernels;
  /** why this engine cannot run here (its tests are reported as skipped), or null */
  missing: string | null;
}

const engines: EngineUnderTest[] = [
  { name: 'wasm', make: createWasmKernels, missing: null },
  { name: 'blas', make: () => createBlasKernels(loadedBlas()), missing: blasMissing() },
];

function loadedBlas(): BlasLibrary {
  const lib = loadBlas();
  if (lib instanceof Error) throw lib;
  return lib;
}

/** [B, C, OC]: the odd shapes, plus shapes on both sides of the blas engine's size threshold (BLAS_MIN_MACS) */
const SHAPES: [number, number, number][] = [[1, 1, 1], [7, 13, 5], [10, 784, 30], [129, 257, 31], [10, 30, 10], [64, 256, 256], [128, 784, 30]];
const ACTS: Activation[] = ['sigmoid', 'relu', 'tanh', 'identity'];

function random(k: Kernels, n: number, rng: Rng, zeroFraction = 0): Float32Array {
  const a = k.alloc(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextFloat() < zeroFraction ? 0 : rng.nextGaussian();
  return a;
}

function copyTo(k: Kernels, a: Float32Array): Float32Array {
  const b = k.alloc(a.length);
  b.set(a);
  return b;
}

/** float32 tolerance that grows with the length of the sums (K terms of unit size) */
function expectClose(actual: Float32Array, expected: Float32Array, K: number, what: string): void {
  expect(actual.length).toBe(expected.length);
  const tol = 2e-6 * Math.sqrt(K) + 1e-6;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!));
    if (!(err <= worst)) { worst = err; at = i; }
  }
  expect(worst, `${what}: worst relative error ${worst} at ${at} (${actual[at]} vs ${expected[at]})`).toBeLessThanOrEqual(tol);
}

for (const engine of engines) {
  describe.skipIf(engine.missing !== null)(`${engine.name} engine against the js reference${skipNote(engine.missing)}`, () => {
    // made when the tests run, not when they are collected: a skipped engine is never loaded
    let k!: Kernels;
    beforeAll(() => { k = engine.make(); });

    for (const [B, C, OC] of SHAPES) {
      for (const zeros of [0, 0.8]) {
        it(`linearForward ${B}x${C}x${OC} (${zeros * 100}% zero inputs), every activation`, () => {
          const rng = new Rng(B * 1000 + C + OC);
          const inp = random(ref, B * C, rng, zeros);
          const w = random(ref, OC * C, rng);
          const bias = random(ref, OC, rng);
          for (const act of ACTS) {
            const expected = new Float32Array(B * OC);
            ref.linearForward(expected, inp, w, bias, B, C, OC, act);
            const out = k.alloc(B * OC);
            k.linearForward(out, copyTo(k, inp), copyTo(k, w), copyTo(k, bias), B, C, OC, act);
            expectClose(out, expected, C, `${act} forward`);
          }
        });

        it(`backward products ${B}x${C}x${OC} (${zeros * 100}% zero inputs) accumulate onto existing gradients`, () => {
          const rng = new Rng(B * 7 + C * 3 + OC);
          const inp = random(ref, B * C, rng, zeros);
          const dout = random(ref, B * OC, rng);
          const w = random(ref, OC * C, rng);
          const dw0 = random(ref, OC * C, rng);
          const db0 = random(ref, OC, rng);
          const dinpRef = new Float32Array(B * C);
          ref.linearBackwardInput(dinpRef, dout, w, B, C, OC);
          const dinp = k.alloc(B * C);
          dinp.fill(123); // overwritten, not accumulated
          k.linearBackwardInput(dinp, copyTo(k, dout), copyTo(k, w), B, C, OC);
          expectClose(dinp, dinpRef, OC, 'linearBackwardInput');

          const dwRef = dw0.slice();
          const dbRef = db0.slice();
          ref.linearBackwardParams(dwRef, dbRef, dout, inp, B, C, OC);
          const dw = copyTo(k, dw0);
          const db = copyTo(k, db0);
          k.linearBackwardParams(dw, db, copyTo(k, dout), copyTo(k, inp), B, C, OC);
          expectClose(dw, dwRef, B, 'dweight');
          expectClose(db, dbRef, B, 'dbias');
        });
      }
    }

    /** linearForward and linearBackwardParams on this input agree with the js reference (random weights, δ, accumulators). */
    function forwardAndWeightGradAgree(inp: Float32Array, B: number, C: number, OC: number, act: Activation, rng: Rng): void {
      const w = random(ref, OC * C, rng); const bias = random(ref, OC, rng); const dout = random(ref, B * OC, rng);
      const expected = new Float32Array(B * OC);
      ref.linearForward(expected, inp, w, bias, B, C, OC, act);
      const out = k.alloc(B * OC);
      k.linearForward(out, copyTo(k, inp), copyTo(k, w), copyTo(k, bias), B, C, OC, act);
      expectClose(out, expected, C, `forward ${B}x${C}x${OC}`);
      const dw0 = random(ref, OC * C, rng); const db0 = random(ref, OC, rng);
      const dwRef = dw0.slice(); const dbRef = db0.slice();
      ref.linearBackwardParams(dwRef, dbRef, dout, inp, B, C, OC);
      const dw = copyTo(k, dw0); const db = copyTo(k, db0);
      k.linearBackwardParams(dw, db, copyTo(k, dout), copyTo(k, inp), B, C, OC);
      expectClose(dw, dwRef, B, `dweight ${B}x${C}x${OC}`);
      expectClose(db, dbRef, B, `dbias ${B}x${C}x${OC}`);
    }

    it('products on inputs whose column blocks are zero in every row, as in MNIST batches (packed and sparse paths)', () => {
      const rng = new Rng(23);
      for (const [B, C, OC] of [[16, 784, 64], [40, 512, 30], [10, 784, 256]] as const) {
        // 2 of every 3 groups of 8 columns are zero in all rows; the rest 70% zeros at random
        const inp = random(ref, B * C, rng, 0.7);
        for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) if ((c >> 3) % 3 !== 0) inp[b * C + c] = 0;
        forwardAndWeightGradAgree(inp, B, C, OC, 'relu', rng);
      }
    });

    it('products on inputs whose leading and trailing columns are blank in every row (the GEMM column range), or all zero', () => {
      const rng = new Rng(29);
      for (const [B, C, OC, lead, trail] of [[64, 784, 256, 41, 13], [33, 301, 70, 3, 0], [20, 260, 100, 0, 7], [17, 784, 64, 784, 0]] as const) {
        const inp = random(ref, B * C, rng, 0.5);
        for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) if (c < lead || c >= C - trail) inp[b * C + c] = 0;
        forwardAndWeightGradAgree(inp, B, C, OC, 'sigmoid', rng);
      }
    });

    it('activationBackward for every activation and odd lengths', () => {
      const rng = new Rng(5);
      for (const n of [1, 3, 4, 17, 1001]) {
        for (const act of ACTS) {
          const d = random(ref, n, rng);
          const a = random(ref, n, rng);
          if (act === 'sigmoid') for (let i = 0; i < n; i++) a[i] = 1 / (1 + Math.exp(-a[i]!));
          if (act === 'relu') for (let i = 0; i < n; i++) a[i] = Math.max(0, a[i]!);
          const expected = d.slice();
          ref.activationBackward(expected, a, n, act);
          const got = copyTo(k, d);
          k.activationBackward(got, copyTo(k, a), n, act);
          expectClose(got, expected, 1, `${act} derivative`);
        }
      }
    });

    it('outputDelta and the loss sum for both costs', () => {
      const rng = new Rng(9);
      for (const [B, K] of [[1, 1], [10, 10], [33, 7]] as const) {
        for (const cost of ['quadratic', 'cross-entropy'] as Cost[]) {
          const out = random(ref, B * K, rng);
          if (cost === 'quadratic') for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(-out[i]!));
          else for (let i = 0; i < out.length; i++) out[i] = out[i]! * 20; // large logits: overflow-safe softmax
          const labels = new Uint8Array(B).map(() => rng.nextInt(K));
          const expected = new Float32Array(B * K);
          const lossRef = ref.outputDelta(expected, out, labels, B, K, cost);
          const delta = k.alloc(B * K);
          const loss = k.outputDelta(delta, copyTo(k, out), labels, B, K, cost);
          expectClose(delta, expected, K, `${cost} delta`);
          expect(Math.abs(loss - lossRef)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(lossRef)));
        }
      }
    });

    it('sgdUpdate with and without momentum and weight decay, addInto and zero', () => {
      const rng = new Rng(11);
      for (const n of [1, 5, 23860]) {
        for (const p of [{ eta: 3, invCount: 0.1, decay: 0, momentum: 0 }, { eta: 0.1, invCount: 1 / 128, decay: 1e-4, momentum: 0.9 }]) {
          const w = random(ref, n, rng); const g = random(ref, n, rng); const v = random(ref, n, rng);
          const wRef = w.slice(); const vRef = v.slice();
          ref.sgdUpdate(wRef, g, vRef, n, p);
          const wk = copyTo(k, w); const vk = copyTo(k, v);
          k.sgdUpdate(wk, copyTo(k, g), p.momentum ? vk : null, n, p);
          expectClose(wk, wRef, 1, 'sgd weights');
          if (p.momentum) expectClose(vk, vRef, 1, 'sgd velocity');
        }
        const y = random(ref, n, rng); const x = random(ref, n, rng);
        const yRef = y.slice();
        ref.addInto(yRef, x, n);
        const yk = copyTo(k, y);
        k.addInto(yk, copyTo(k, x), n);
        expectClose(yk, yRef, 1, 'addInto');
        k.zero(yk, n);
        expect(yk.every((v) => v === 0)).toBe(true);
      }
    });

    it('allFinite finds a NaN or an infinity anywhere, in its own memory or not', () => {
      for (const n of [1, 7, 8, 13, 23860]) {
        const own = k.alloc(n);
        const foreign = new Float32Array(n);
        for (let i = 0; i < n; i++) own[i] = foreign[i] = Math.sin(i) * 1e30;
        expect(k.allFinite(own, n)).toBe(true);
        expect(k.allFinite(foreign, n)).toBe(true);
        for (const bad of [NaN, Infinity, -Infinity]) {
          for (const at of new Set([0, n >> 1, n - 1])) {
            own[at] = bad; foreign[at] = bad;
            expect(k.allFinite(own, n)).toBe(false);
            expect(k.allFinite(foreign, n)).toBe(false);
            own[at] = 1; foreign[at] = 1;
          }
        }
        // only the first n count
        own[n - 1] = NaN;
        expect(k.allFinite(own, n - 1)).toBe(true);
      }
    });

    it('sgdPlainSum2 gives the same bits as its own addInto then plain sgdUpdate, and leaves both sums as they were', () => {
      const rng = new Rng(12);
      for (const n of [1, 5, 13, 23860]) {
        const w = copyTo(k, random(ref, n, rng)); const a = copyTo(k, random(ref, n, rng)); const b = copyTo(k, random(ref, n, rng));
        const aBefore = a.slice(); const bBefore = b.slice();
        const expected = w.slice();
        const sum = k.alloc(n);
        sum.set(a);
        k.addInto(sum, b, n);
        k.sgdUpdate(expected, sum, null, n, { eta: 0.1, invCount: 1 / 1024, decay: 0, momentum: 0 });
        k.sgdPlainSum2(w, a, b, n, 0.1, 1 / 1024);
        for (let i = 0; i < n; i++) if (!Object.is(w[i], expected[i])) throw new Error(`n ${n}: entry ${i} is ${w[i]}, the two-pass update gives ${expected[i]}`);
        expect(Array.from(a)).toEqual(Array.from(aBefore));
        expect(Array.from(b)).toEqual(Array.from(bBefore));
      }
    });

    it('gathers and scales byte rows like the reference', () => {
      const rng = new Rng(17);
      const D = 784 + 5; // not a multiple of 16: exercises the scalar tail
      const images = new Uint8Array(50 * D).map(() => rng.nextInt(256));
      const indices = new Uint32Array([49, 0, 7, 7, 23, 1, 48]);
      const expected = new Float32Array(indices.length * D);
      ref.gatherScaled(expected, images, indices, indices.length, D, 1 / 255);
      for (const dst of [k.alloc(indices.length * D), new Float32Array(indices.length * D)]) {
        k.gatherScaled(dst, images, indices, indices.length, D, 1 / 255);
        expectClose(dst, expected, 1, 'gather');
      }
      expect(() => k.gatherScaled(k.alloc(D), images, [50], 1, D, 1)).toThrow(/row 50 is outside the 50 images/);
    });

    it('gathers from a large data set handed repeatedly (which the wasm engines keep a copy of)', () => {
      const rng = new Rng(19);
      const D = 784;
      const train = new Uint8Array(3000 * D).map(() => rng.nextInt(256)); // 2.4 MB
      const test = Buffer.from(new Uint8Array(2000 * D).map(() => rng.nextInt(256))); // a Node Buffer, as files load
      // training steps with an evaluation now and then: two data sets alternating
      for (const [call, images] of [train, train, train, test, train, test, test, train].entries()) {
        const indices = new Uint32Array(10).map(() => rng.nextInt(images.length / D));
        const expected = new Float32Array(10 * D);
        ref.gatherScaled(expected, images, indices, 10, D, 1 / 255);
        const dst = k.alloc(10 * D);
        k.gatherScaled(dst, images, indices, 10, D, 1 / 255);
        expectClose(dst, expected, 1, `gather call ${call}`);
      }
    });

    it('holdImages copies a data set up front, and gathers from it like the reference', () => {
      const rng = new Rng(31);
      const D = 784;
      const images = Buffer.from(new Uint8Array(2000 * D).map(() => rng.nextInt(256))); // 1.6 MB, a Node Buffer
      const arena = (k as Kernels & { core?: { arena: { used: number } } }).core!.arena;
      const before = arena.used;
      k.holdImages(images);
      expect(arena.used - before).toBeGreaterThanOrEqual(images.length);
      k.holdImages(images); // a second hold keeps the one copy
      const after = arena.used;
      for (let call = 0; call < 3; call++) {
        const indices = new Uint32Array(12).map(() => rng.nextInt(2000));
        const expected = new Float32Array(12 * D);
        ref.gatherScaled(expected, images, indices, 12, D, 1 / 255);
        const dst = k.alloc(12 * D);
        k.gatherScaled(dst, images, indices, 12, D, 1 / 255);
        expectClose(dst, expected, 1, `gather call ${call}`);
      }
      expect(arena.used - after).toBeLessThan(images.length); // the dst buffers, no second copy
    });

    it('computes the same for arrays it did not allocate (plain and SharedArrayBuffer-backed)', () => {
      const rng = new Rng(13);
      const [B, C, OC] = [129, 257, 31];
      const inp = random(ref, B * C, rng, 0.5); const w = random(ref, OC * C, rng); const bias = random(ref, OC, rng);
      const dout = random(ref, B * OC, rng); const dw0 = random(ref, OC * C, rng); const db0 = random(ref, OC, rng);
      const own = { out: k.alloc(B * OC), dw: copyTo(k, dw0), db: copyTo(k, db0), dinp: k.alloc(B * C) };
      k.linearForward(own.out, copyTo(k, inp), copyTo(k, w), copyTo(k, bias), B, C, OC, 'tanh');
      k.linearBackwardParams(own.dw, own.db, copyTo(k, dout), copyTo(k, inp), B, C, OC);
      k.linearBackwardInput(own.dinp, copyTo(k, dout), copyTo(k, w), B, C, OC);
      const shared = (a: Float32Array): Float32Array => {
        // a view at an offset inside a SharedArrayBuffer, as a gradient from another thread arrives
        const sab = new SharedArrayBuffer((a.length + 8) * 4);
        const v = new Float32Array(sab, 16, a.length);
        v.set(a);
        return v;
      };
      for (const wrap of [(a: Float32Array) => a.slice(), shared]) {
        const out = wrap(new Float32Array(B * OC)); const dw = wrap(dw0); const db = wrap(db0); const dinp = wrap(new Float32Array(B * C));
        k.linearForward(out, wrap(inp), wrap(w), wrap(bias), B, C, OC, 'tanh');
        k.linearBackwardParams(dw, db, wrap(dout), wrap(inp), B, C, OC);
        k.linearBackwardInput(dinp, wrap(dout), wrap(w), B, C, OC);
        expect(Array.from(out)).toEqual(Array.from(own.out));
        expect(Array.from(dw)).toEqual(Array.from(own.dw));
        expect(Array.from(db)).toEqual(Array.from(own.db));
        expect(Array.from(dinp)).toEqual(Array.from(own.dinp));
        const g = wrap(dout); const p = own.out.slice();
        const pRef = p.slice();
        k.sgdUpdate(pRef, copyTo(k, dout), null, B * OC, { eta: 0.5, invCount: 0.25, decay: 0.01, momentum: 0 });
        const pw = wrap(p);
        k.sgdUpdate(pw, g, null, B * OC, { eta: 0.5, invCount: 0.25, decay: 0.01, momentum: 0 });
        expect(Array.from(pw)).toEqual(Array.from(pRef));
      }
    });

    it('rejects a buffer shorter than the dimensions say instead of reading past it', () => {
      const out = k.alloc(6);
      expect(() => k.linearForward(out, k.alloc(5), k.alloc(6), k.alloc(3), 2, 3, 3, 'relu')).toThrow(/inp has 5 floats but the call needs 6/);
      expect(() => k.addInto(new Float32Array(3), new Float32Array(2), 3)).toThrow(/x has 2 floats/);
    });
  });
}

describe('wasm memory', () => {
  it('keeps buffers allocated before a memory growth valid, in place and without copies', () => {
    const k = createWasmKernels();
    const rng = new Rng(3);
    const [B, C, OC] = [10, 784, 30];
    const inp = random(k, B * C, rng); const w = random(k, OC * C, rng); const bias = random(k, OC, rng);
    const out = k.alloc(B * OC);
    const before = k.core.arena.memory.buffer.byteLength;
    const big = k.alloc(16 * 1024 * 1024); // 64 MiB: forces memory.grow
    expect(k.core.arena.memory.buffer.byteLength).toBeGreaterThan(before);
    expect(inp.length).toBe(B * C); // a detached view would report length 0
    expect(k.core.arena.owns(inp)).toBe(true);
    const expected = new Float32Array(B * OC);
    ref.linearForward(expected, inp, w, bias, B, C, OC, 'sigmoid');
    k.linearForward(out, inp, w, bias, B, C, OC, 'sigmoid');
    expectClose(out, expected, C, 'forward on pre-growth buffers');
    // the old views and the memory see the same bytes: writes through one show in the other
    const whole = new Float32Array(k.core.arena.memory.buffer);
    expect(whole[out.byteOffset / 4]).toBe(out[0]);
    inp[0] = 42;
    expect(whole[inp.byteOffset / 4]).toBe(42);
    big[big.length - 1] = 7;
    expect(big[big.length - 1]).toBe(7);
  });
});

