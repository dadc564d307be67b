/**
 * GFLOP/s of every available engine on the matrix products of a training step, for the shapes
 * of the issue: B in {10, 128, 1024} against 784x30, 784x256 and 256x256 layers. Each product
 * is checked against the js reference before it is timed. Inputs of the 784-wide layers are
 * real MNIST rows (81% zeros, which the wasm kernels skip) and, separately, dense Gaussian
 * values; FLOPs are counted as for the dense product (2·B·C·OC), so skipping zeros shows as a
 * higher effective rate. Ratios are measured in the same run.
 *
 *   node dist/bench/kernels.js [--engines js,wasm,blas] [--reps 5] [--no-js-big]
 */
import { cpus } from 'node:os';
import { loadMnist } from '../src/data/mnist.js';
import { PIXEL_SCALE } from '../src/data/batches.js';
import { createJsKernels } from '../src/tensor/kernels-js.js';
import { createWasmKernels } from '../src/tensor/kernels-wasm.js';
import { createBlasKernels, loadBlas } from '../src/tensor/kernels-blas.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { Rng } from '../src/tensor/rng.js';
import { timeCalls, timeInterleaved } from './repeat-timer.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const reps = Number(flag('--reps', '5'));
const wanted = flag('--engines', 'js,wasm,blas').split(',');
/** the js reference at B = 1024 takes seconds per call: it is timed once, not per rep, unless asked */
const jsBigReps = process.argv.includes('--no-js-big') ? 0 : 1;

const ref = createJsKernels();
const engines: Kernels[] = [];
if (wanted.includes('js')) engines.push(ref);
if (wanted.includes('wasm')) engines.push(createWasmKernels());
const blas = loadBlas();
if (wanted.includes('blas')) {
  if (blas instanceof Error) console.log(`# blas engine skipped: ${blas.message}`);
  else engines.push(createBlasKernels(blas));
}

console.log('# bench/kernels: GFLOP/s per engine (median of reps, dense-equivalent FLOPs 2*B*C*OC)');
console.log(`# machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}${blas instanceof Error ? '' : `, ${blas.description}`}`);
console.log(`# reps ${reps} of >= 40 ms each, alternating between engines (burn-in: the calibration calls); every result checked against the js reference first`);

const mnist = loadMnist();
const rng = new Rng(7);

type Op = 'forward' | 'backInput' | 'backParams';
const OPS: Op[] = ['forward', 'backInput', 'backParams'];
const LAYERS: [number, number][] = [[784, 30], [784, 256], [256, 256]];
const BATCHES = [10, 128, 1024];

function fill(a: Float32Array, kind: 'gauss' | 'mnist', B: number, C: number): void {
  if (kind === 'mnist') {
    for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) a[b * C + c] = mnist.train.images[(b * 37 % 50000) * C + c]! * PIXEL_SCALE;
  } else {
    for (let i = 0; i < a.length; i++) a[i] = rng.nextGaussian();
  }
}

function maxRelError(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return worst;
}

interface Row { op: Op; B: number; C: number; OC: number; input: string; gflops: Map<string, number> }
const rows: Row[] = [];

for (const [C, OC] of LAYERS) {
  for (const inputKind of (C === 784 ? ['mnist', 'gauss'] : ['gauss']) as ('mnist' | 'gauss')[]) {
    for (const B of BATCHES) {
      // reference data, in plain arrays
      const inp = new Float32Array(B * C); fill(inp, inputKind, B, C);
      const w = new Float32Array(OC * C); fill(w, 'gauss', OC, C);
      for (let i = 0; i < w.length; i++) w[i] = w[i]! / Math.sqrt(C);
      const bias = new Float32Array(OC); fill(bias, 'gauss', 1, OC);
      const dout = new Float32Array(B * OC); fill(dout, 'gauss', B, OC);
      const expected = {
        forward: new Float32Array(B * OC), backInput: new Float32Array(B * C), backParams: new Float32Array(OC * C),
      };
      ref.linearForward(expected.forward, inp, w, bias, B, C, OC, 'sigmoid');
      ref.linearBackwardInput(expected.backInput, dout, w, B, C, OC);
      ref.linearBackwardParams(expected.backParams, new Float32Array(OC), dout, inp, B, C, OC);
      const perOp = new Map<Op, Row>(OPS.map((op) => [op, { op, B, C, OC, input: inputKind, gflops: new Map() }]));
      const calls = new Map<Op, { name: string; fn: () => void }[]>(OPS.map((op) => [op, []]));
      for (const k of engines) {
        const own = (a: Float32Array) => { const x = k.alloc(a.length); x.set(a); return x; };
        const I = own(inp), W = own(w), Bi = own(bias), D = own(dout);
        const out = k.alloc(B * OC), dinp = k.alloc(B * C), dw = k.alloc(OC * C), db = k.alloc(OC);
        const fns: Record<Op, () => void> = {
          forward: () => k.linearForward(out, I, W, Bi, B, C, OC, 'sigmoid'),
          backInput: () => k.linearBackwardInput(dinp, D, W, B, C, OC),
          backParams: () => k.linearBackwardParams(dw, db, D, I, B, C, OC),
        };
        const results: Record<Op, Float32Array> = { forward: out, backInput: dinp, backParams: dw };
        for (const op of OPS) {
          if (op === 'backInput' && inputKind === 'mnist') continue; // does not read the input
          if (op === 'backParams') k.zero(dw, dw.length);
          fns[op]();
          const err = maxRelError(results[op], expected[op]);
          if (!(err < 1e-4)) throw new Error(`${k.name} ${op} ${B}x${C}x${OC}: relative error ${err} against the reference`);
          if (k.name === 'js' && B * C * OC > 20e6) {
            // the naive reference takes about a second here: one timed call, outside the interleaving
            if (jsBigReps > 0) {
              const t = timeCalls(fns[op], { reps: 1, minMs: 1 });
              perOp.get(op)!.gflops.set(k.name, (2 * B * C * OC) / t.median / 1e9);
            }
            continue;
          }
          calls.get(op)!.push({ name: k.name, fn: fns[op] });
        }
      }
      for (const op of OPS) {
        const list = calls.get(op)!;
        if (list.length === 0) continue;
        const timings = timeInterleaved(list.map((c) => c.fn), { reps });
        list.forEach((c, i) => perOp.get(op)!.gflops.set(c.name, (2 * B * C * OC) / timings[i]!.median / 1e9));
      }
      for (const op of OPS) if (perOp.get(op)!.gflops.size > 0) rows.push(perOp.get(op)!);
    }
  }
}

const names = engines.map((k) => k.name);
const header = ['op', 'B x C x OC', 'input', ...names.map((n) => `${n} GF/s`), ...(names.includes('js') && names.includes('wasm') ? ['wasm/js'] : []), ...(names.includes('wasm') && names.includes('blas') ? ['blas/wasm'] : [])];
console.log('');
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const r of rows) {
  const g = (n: string) => r.gflops.get(n);
  const cells = names.map((n) => (g(n) === undefined ? '–' : g(n)!.toFixed(2)));
  const ratio = (a: string, b: string) => (g(a) !== undefined && g(b) !== undefined ? `${(g(a)! / g(b)!).toFixed(1)}x` : '–');
  if (names.includes('js') && names.includes('wasm')) cells.push(ratio('wasm', 'js'));
  if (names.includes('wasm') && names.includes('blas')) cells.push(ratio('blas', 'wasm'));
  console.log(`| ${r.op} | ${r.B} x ${r.C} x ${r.OC} | ${r.input} | ${cells.join(' | ')} |`);
}
