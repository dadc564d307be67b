// WebAssembly SIMD128 kernels of dpt, in AssemblyScript (compiled by `npm run build:wasm`).
// Every argument that names data is a byte address in the imported shared memory; the host
// (src/tensor/kernels-wasm.ts) owns allocation and guarantees 16 readable bytes after every
// buffer, so a masked 4-lane load at the end of a row never leaves memory.
// Conventions as in src/tensor/kernels.ts: row-major, weights [OC, C], outputs first,
// parameter-gradient kernels accumulate. Activation codes: 0 identity, 1 sigmoid, 2 relu, 3 tanh.

const ACT_IDENTITY = 0;
const ACT_SIGMOID = 1;
const ACT_RELU = 2;
const ACT_TANH = 3;

// ---------------------------------------------------------------------------------------------
// vector helpers

/** [Σa0, Σa1, Σa2, Σa3]: the horizontal sums of four accumulators in one vector. */
// @ts-ignore: decorator
@inline function hsum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t0 = f32x4.add(f32x4.shuffle(a0, a1, 0, 4, 1, 5), f32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const t1 = f32x4.add(f32x4.shuffle(a2, a3, 0, 4, 1, 5), f32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return f32x4.add(f32x4.shuffle(t0, t1, 0, 1, 4, 5), f32x4.shuffle(t0, t1, 2, 3, 6, 7));
}

// @ts-ignore: decorator
@inline function hsum(a: v128): f32 {
  const t = f32x4.add(a, f32x4.shuffle(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1);
}

// @ts-ignore: decorator
@inline function madd(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Lanes [0, n) all ones, the rest zero (n in 0..4): masks the partial block at a row's end. */
function tailMask(n: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(n));
}

/**
 * e^x for four lanes: Cephes expf (range reduction by ln 2 split in two parts, degree-6
 * polynomial), about 1 ulp on [-87, 88]. Inputs are clamped to that range, which only matters
 * where the result under- or overflows anyway (sigmoid and tanh stay correct there).
 */
// @ts-ignore: decorator
@inline function expv(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.0)), f32x4.splat(88.0));
  const fx = f32x4.floor(f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), f32x4.splat(0.5)));
  x = f32x4.sub(x, f32x4.mul(fx, f32x4.splat(0.693359375)));
  x = f32x4.sub(x, f32x4.mul(fx, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(x, x);
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(y, z), x), f32x4.splat(1.0));
  const n = i32x4.trunc_sat_f32x4_s(fx);
  const pow2n = i32x4.shl(i32x4.add(n, i32x4.splat(127)), 23);
  return f32x4.mul(y, pow2n);
}

/** act(z) as a call: keeps the big matmul functions small (the epilogue runs once per output tile). */
function activate(z: v128, act: i32): v128 {
  return activateInline(z, act);
}

// @ts-ignore: decorator
@inline function activateInline(z: v128, act: i32): v128 {
  if (act == ACT_SIGMOID) {
    const one = f32x4.splat(1.0);
    return f32x4.div(one, f32x4.add(one, expv(f32x4.neg(z))));
  }
  if (act == ACT_RELU) return f32x4.max(z, f32x4.splat(0.0));
  if (act == ACT_TANH) {
    // tanh z = sign(z)·(1 − e^{−2|z|}) / (1 + e^{−2|z|}): no overflow for large |z|
    const one = f32x4.splat(1.0);
    const e = expv(f32x4.mul(f32x4.abs(z), f32x4.splat(-2.0)));
    const t = f32x4.div(f32x4.sub(one, e), f32x4.add(one, e));
    const sign = v128.and(z, i32x4.splat(0x80000000));
    return v128.or(t, sign);
  }
  return z;
}

// ---------------------------------------------------------------------------------------------
// nonzero 4-column blocks
//
// Inputs are often sparse (81% of MNIST pixels are 0, ReLU zeroes about half its outputs), and
// a product term with x = 0 adds exactly nothing. The kernels first list which 4-column blocks
// of a group of rows hold any nonzero value and then only visit those: the scan costs about
// 1/OC of the product it saves, and the SIMD inner loops stay dense.

/**
 * Writes the byte offsets of the full 4-column blocks that are nonzero in any of rows [r0, r1)
 * to list; returns how many. `list` has room for listBytes(C) bytes: the list itself, then (for
 * many rows) an accumulator row.
 */
function nonzeroBlocks(list: usize, x: usize, r0: i32, r1: i32, C: i32): i32 {
  const nblk = C >> 2;
  const rowBytes = <usize>C << 2;
  const zero = f32x4.splat(0.0);
  let n = 0;
  if (r1 - r0 <= 4) {
    for (let j = 0; j < nblk; j++) {
      const off = <usize>j << 4;
      let v = i32x4.splat(0);
      for (let r = r0; r < r1; r++) v = v128.or(v, v128.load(x + <usize>r * rowBytes + off));
      // compare as floats so that -0.0 counts as zero too
      if (v128.any_true(f32x4.ne(v, zero))) {
        store<i32>(list + (<usize>n << 2), <i32>off);
        n++;
      }
    }
    return n;
  }
  // Many rows: OR them into an accumulator row, four rows at a time (four sequential streams;
  // a column-wise walk over a 1024-row batch missed the cache on every load), then read the
  // accumulator. Raw bits are ORed and the sign bit dropped at the end, so -0.0 counts as 0.
  const acc = (list + <usize>C + 64) & ~63;
  for (let j = 0; j < nblk; j++) v128.store(acc + (<usize>j << 4), zero);
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const x0 = x + <usize>r * rowBytes, x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
    for (let j = 0; j < nblk; j++) {
      const off = <usize>j << 4;
      const v = v128.or(v128.or(v128.load(x0 + off), v128.load(x1 + off)), v128.or(v128.load(x2 + off), v128.load(x3 + off)));
      v128.store(acc + off, v128.or(v128.load(acc + off), v));
    }
  }
  for (; r < r1; r++) {
    const row = x + <usize>r * rowBytes;
    for (let j = 0; j < nblk; j++) {
      const off = <usize>j << 4;
      v128.store(acc + off, v128.or(v128.load(acc + off), v128.load(row + off)));
    }
  }
  const noSign = i32x4.splat(0x7fffffff);
  for (let j = 0; j < nblk; j++) {
    const off = <usize>j << 4;
    if (v128.any_true(v128.and(v128.load(acc + off), noSign))) {
      store<i32>(list + (<usize>n << 2), <i32>off);
      n++;
    }
  }
  return n;
}

/** Bytes of the `list` scratch that the block-skipping kernels need for C columns. */
export function listBytes(C: i32): i32 {
  return C + 128 + C * 4 + 16;
}

// ---------------------------------------------------------------------------------------------
// linearForward: out[B,OC] = act(inp[B,C] · weight[OC,C]ᵀ + bias[OC])
//
// Dot-product form: a 4x2 tile of outputs keeps 8 accumulators over the shared blocks of four
// input rows and two weight rows (6 loads feed 16 flops), then reduces them horizontally and
// applies bias and activation in the epilogue before the stores. A 4x4 tile (16 accumulators,
// 8 loads per 32 flops on paper) was 25-40% slower: V8 has 16 vector registers and spilled.

export function linearForward(out: usize, inp: usize, weight: usize, bias: usize,
  B: i32, C: i32, OC: i32, act: i32, list: usize): void {
  const rowBytes = <usize>C << 2;
  const C4 = C & ~3;
  const mask = tailMask(C - C4);
  const tailOff = <usize>C4 << 2;
  const hasTail = C4 != C;
  const outStride = <usize>OC << 2;
  for (let b0 = 0; b0 < B; b0 += 4) {
    const rows = min(4, B - b0);
    const n = nonzeroBlocks(list, inp, b0, b0 + rows, C);
    const x0 = inp + <usize>b0 * rowBytes;
    if (rows == 4) {
      const x1 = x0 + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
      let o = 0;
      for (; o + 2 <= OC; o += 2) {
        const w0 = weight + <usize>o * rowBytes, w1 = w0 + rowBytes;
        let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (let j = 0; j < n; j++) {
          const off = <usize>load<i32>(list + (<usize>j << 2));
          const vw0 = v128.load(w0 + off), vw1 = v128.load(w1 + off);
          let vx = v128.load(x0 + off); a00 = madd(a00, vx, vw0); a01 = madd(a01, vx, vw1);
          vx = v128.load(x1 + off); a10 = madd(a10, vx, vw0); a11 = madd(a11, vx, vw1);
          vx = v128.load(x2 + off); a20 = madd(a20, vx, vw0); a21 = madd(a21, vx, vw1);
          vx = v128.load(x3 + off); a30 = madd(a30, vx, vw0); a31 = madd(a31, vx, vw1);
        }
        if (hasTail) {
          const vw0 = v128.and(v128.load(w0 + tailOff), mask), vw1 = v128.and(v128.load(w1 + tailOff), mask);
          let vx = v128.and(v128.load(x0 + tailOff), mask); a00 = madd(a00, vx, vw0); a01 = madd(a01, vx, vw1);
          vx = v128.and(v128.load(x1 + tailOff), mask); a10 = madd(a10, vx, vw0); a11 = madd(a11, vx, vw1);
          vx = v128.and(v128.load(x2 + tailOff), mask); a20 = madd(a20, vx, vw0); a21 = madd(a21, vx, vw1);
          vx = v128.and(v128.load(x3 + tailOff), mask); a30 = madd(a30, vx, vw0); a31 = madd(a31, vx, vw1);
        }
        // [r0o0, r0o1, r1o0, r1o1] and [r2o0, r2o1, r3o0, r3o1]
        const vb = v128.load64_splat(bias + (<usize>o << 2));
        const r01 = activate(f32x4.add(hsum4(a00, a01, a10, a11), vb), act);
        const r23 = activate(f32x4.add(hsum4(a20, a21, a30, a31), vb), act);
        const p = out + ((<usize>b0 * OC + o) << 2);
        v128.store64_lane(p, r01, 0); v128.store64_lane(p + outStride, r01, 1);
        v128.store64_lane(p + 2 * outStride, r23, 0); v128.store64_lane(p + 3 * outStride, r23, 1);
      }
      for (; o < OC; o++) {
        const w0 = weight + <usize>o * rowBytes;
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (let j = 0; j < n; j++) {
          const off = <usize>load<i32>(list + (<usize>j << 2));
          const vw = v128.load(w0 + off);
          a0 = madd(a0, v128.load(x0 + off), vw); a1 = madd(a1, v128.load(x1 + off), vw);
          a2 = madd(a2, v128.load(x2 + off), vw); a3 = madd(a3, v128.load(x3 + off), vw);
        }
        if (hasTail) {
          const vw = v128.and(v128.load(w0 + tailOff), mask);
          a0 = madd(a0, v128.and(v128.load(x0 + tailOff), mask), vw); a1 = madd(a1, v128.and(v128.load(x1 + tailOff), mask), vw);
          a2 = madd(a2, v128.and(v128.load(x2 + tailOff), mask), vw); a3 = madd(a3, v128.and(v128.load(x3 + tailOff), mask), vw);
        }
        const z = f32x4.add(hsum4(a0, a1, a2, a3), f32x4.splat(load<f32>(bias + (<usize>o << 2))));
        const r = activate(z, act);
        const p = out + ((<usize>b0 * OC + o) << 2);
        store<f32>(p, f32x4.extract_lane(r, 0));
        store<f32>(p + outStride, f32x4.extract_lane(r, 1));
        store<f32>(p + 2 * outStride, f32x4.extract_lane(r, 2));
        store<f32>(p + 3 * outStride, f32x4.extract_lane(r, 3));
      }
    } else {
      for (let r = 0; r < rows; r++) forwardRow(out + (<usize>(b0 + r) * OC << 2), x0 + <usize>r * rowBytes,
        weight, bias, C, OC, act, list, n, mask, hasTail);
    }
  }
}

/** One input row against all OC weight rows (the batch's last rows when B is not a multiple of 4). */
function forwardRow(outRow: usize, x: usize, weight: usize, bias: usize, C: i32, OC: i32, act: i32,
  list: usize, n: i32, mask: v128, hasTail: bool): void {
  const rowBytes = <usize>C << 2;
  const tailOff = <usize>(C & ~3) << 2;
  const vxt = v128.and(v128.load(x + tailOff), mask);
  let o = 0;
  for (; o + 4 <= OC; o += 4) {
    const w0 = weight + <usize>o * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let j = 0; j < n; j++) {
      const off = <usize>load<i32>(list + (<usize>j << 2));
      const vx = v128.load(x + off);
      a0 = madd(a0, vx, v128.load(w0 + off)); a1 = madd(a1, vx, v128.load(w1 + off));
      a2 = madd(a2, vx, v128.load(w2 + off)); a3 = madd(a3, vx, v128.load(w3 + off));
    }
    if (hasTail) {
      a0 = madd(a0, vxt, v128.and(v128.load(w0 + tailOff), mask)); a1 = madd(a1, vxt, v128.and(v128.load(w1 + tailOff), mask));
      a2 = madd(a2, vxt, v128.and(v128.load(w2 + tailOff), mask)); a3 = madd(a3, vxt, v128.and(v128.load(w3 + tailOff), mask));
    }
    const z = f32x4.add(hsum4(a0, a1, a2, a3), v128.load(bias + (<usize>o << 2)));
    v128.store(outRow + (<usize>o << 2), activate(z, act));
  }
  for (; o < OC; o++) {
    const w0 = weight + <usize>o * rowBytes;
    let a0 = f32x4.splat(0);
    for (let j = 0; j < n; j++) {
      const off = <usize>load<i32>(list + (<usize>j << 2));
      a0 = madd(a0, v128.load(x + off), v128.load(w0 + off));
    }
    if (hasTail) a0 = madd(a0, vxt, v128.and(v128.load(w0 + tailOff), mask));
    const z = f32x4.splat(hsum(a0) + load<f32>(bias + (<usize>o << 2)));
    store<f32>(outRow + (<usize>o << 2), f32x4.extract_lane(activate(z, act), 0));
  }
}

// ---------------------------------------------------------------------------------------------
// linearBackwardInput: dinp[B,C] = dout[B,OC] · weight[OC,C]   (overwrites)
//
// Outer-product form: a tile of 4 rows x 8 columns is 8 accumulators; each o adds four
// broadcast δ values times two vectors of weight row o.

export function linearBackwardInput(dinp: usize, dout: usize, weight: usize, B: i32, C: i32, OC: i32): void {
  const rowBytes = <usize>C << 2;
  const doutStride = <usize>OC << 2;
  const C8 = C & ~7;
  const C4 = C & ~3;
  for (let b0 = 0; b0 < B; b0 += 4) {
    const rows = min(4, B - b0);
    if (rows == 4) {
      const d0 = dout + <usize>b0 * doutStride, d1 = d0 + doutStride, d2 = d1 + doutStride, d3 = d2 + doutStride;
      const g0 = dinp + <usize>b0 * rowBytes, g1 = g0 + rowBytes, g2 = g1 + rowBytes, g3 = g2 + rowBytes;
      let c = 0;
      for (; c < C8; c += 8) {
        const cOff = <usize>c << 2;
        let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (let o = 0; o < OC; o++) {
          const wp = weight + <usize>o * rowBytes + cOff;
          const w0 = v128.load(wp), w1 = v128.load(wp, 16);
          const oOff = <usize>o << 2;
          let s = v128.load32_splat(d0 + oOff); a00 = madd(a00, s, w0); a01 = madd(a01, s, w1);
          s = v128.load32_splat(d1 + oOff); a10 = madd(a10, s, w0); a11 = madd(a11, s, w1);
          s = v128.load32_splat(d2 + oOff); a20 = madd(a20, s, w0); a21 = madd(a21, s, w1);
          s = v128.load32_splat(d3 + oOff); a30 = madd(a30, s, w0); a31 = madd(a31, s, w1);
        }
        v128.store(g0 + cOff, a00); v128.store(g0 + cOff, a01, 16);
        v128.store(g1 + cOff, a10); v128.store(g1 + cOff, a11, 16);
        v128.store(g2 + cOff, a20); v128.store(g2 + cOff, a21, 16);
        v128.store(g3 + cOff, a30); v128.store(g3 + cOff, a31, 16);
      }
      for (; c < C4; c += 4) {
        const cOff = <usize>c << 2;
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (let o = 0; o < OC; o++) {
          const w = v128.load(weight + <usize>o * rowBytes + cOff);
          const oOff = <usize>o << 2;
          a0 = madd(a0, v128.load32_splat(d0 + oOff), w); a1 = madd(a1, v128.load32_splat(d1 + oOff), w);
          a2 = madd(a2, v128.load32_splat(d2 + oOff), w); a3 = madd(a3, v128.load32_splat(d3 + oOff), w);
        }
        v128.store(g0 + cOff, a0); v128.store(g1 + cOff, a1); v128.store(g2 + cOff, a2); v128.store(g3 + cOff, a3);
      }
      for (let r = 0; r < 4; r++) backwardInputScalar(dinp, dout, weight, b0 + r, C4, C, C, OC);
    } else {
      for (let r = 0; r < rows; r++) {
        const b = b0 + r;
        const d = dout + <usize>b * doutStride;
        const g = dinp + <usize>b * rowBytes;
        let c = 0;
        for (; c < C8; c += 8) {
          const cOff = <usize>c << 2;
          let a0 = f32x4.splat(0), a1 = a0;
          for (let o = 0; o < OC; o++) {
            const wp = weight + <usize>o * rowBytes + cOff;
            const s = v128.load32_splat(d + (<usize>o << 2));
            a0 = madd(a0, s, v128.load(wp)); a1 = madd(a1, s, v128.load(wp, 16));
          }
          v128.store(g + cOff, a0); v128.store(g + cOff, a1, 16);
        }
        backwardInputScalar(dinp, dout, weight, b, c, C, C, OC);
      }
    }
  }
}

/** dinp[b, c0..c1) computed one element at a time (column tails). */
function backwardInputScalar(dinp: usize, dout: usize, weight: usize, b: i32, c0: i32, c1: i32, C: i32, OC: i32): void {
  for (let c = c0; c < c1; c++) {
    let s: f32 = 0;
    for (let o = 0; o < OC; o++) s += load<f32>(dout + ((<usize>b * OC + o) << 2)) * load<f32>(weight + ((<usize>o * C + c) << 2));
    store<f32>(dinp + ((<usize>b * C + c) << 2), s);
  }
}

// ---------------------------------------------------------------------------------------------
// linearBackwardParams: dweight[OC,C] += dout[B,OC]ᵀ · inp[B,C];  dbias[OC] += Σ_b dout[b,:]
//
// Outer-product form over the batch: a tile of 4 weight rows x 2 nonzero column blocks keeps 8
// accumulators; each example adds four broadcast δ values times two input vectors. Column blocks
// that are zero in every example of the batch are skipped (their gradient is exactly 0).

export function linearBackwardParams(dweight: usize, dbias: usize, dout: usize, inp: usize,
  B: i32, C: i32, OC: i32, list: usize): void {
  const rowBytes = <usize>C << 2;
  const doutStride = <usize>OC << 2;
  const C4 = C & ~3;
  const n = nonzeroBlocks(list, inp, 0, B, C);
  let o = 0;
  for (; o + 4 <= OC; o += 4) {
    const g0 = dweight + <usize>o * rowBytes, g1 = g0 + rowBytes, g2 = g1 + rowBytes, g3 = g2 + rowBytes;
    const oOff = <usize>o << 2;
    let j = 0;
    for (; j + 2 <= n; j += 2) {
      const offA = <usize>load<i32>(list + (<usize>j << 2));
      const offB = <usize>load<i32>(list + (<usize>j << 2), 4);
      let a0 = f32x4.splat(0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
      for (let b = 0; b < B; b++) {
        const x = inp + <usize>b * rowBytes;
        const xa = v128.load(x + offA), xb = v128.load(x + offB);
        const d = dout + <usize>b * doutStride + oOff;
        let s = v128.load32_splat(d); a0 = madd(a0, s, xa); b0 = madd(b0, s, xb);
        s = v128.load32_splat(d, 4); a1 = madd(a1, s, xa); b1 = madd(b1, s, xb);
        s = v128.load32_splat(d, 8); a2 = madd(a2, s, xa); b2 = madd(b2, s, xb);
        s = v128.load32_splat(d, 12); a3 = madd(a3, s, xa); b3 = madd(b3, s, xb);
      }
      v128.store(g0 + offA, f32x4.add(v128.load(g0 + offA), a0)); v128.store(g0 + offB, f32x4.add(v128.load(g0 + offB), b0));
      v128.store(g1 + offA, f32x4.add(v128.load(g1 + offA), a1)); v128.store(g1 + offB, f32x4.add(v128.load(g1 + offB), b1));
      v128.store(g2 + offA, f32x4.add(v128.load(g2 + offA), a2)); v128.store(g2 + offB, f32x4.add(v128.load(g2 + offB), b2));
      v128.store(g3 + offA, f32x4.add(v128.load(g3 + offA), a3)); v128.store(g3 + offB, f32x4.add(v128.load(g3 + offB), b3));
    }
    if (j < n) {
      const off = <usize>load<i32>(list + (<usize>j << 2));
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let b = 0; b < B; b++) {
        const xa = v128.load(inp + <usize>b * rowBytes + off);
        const d = dout + <usize>b * doutStride + oOff;
        a0 = madd(a0, v128.load32_splat(d), xa); a1 = madd(a1, v128.load32_splat(d, 4), xa);
        a2 = madd(a2, v128.load32_splat(d, 8), xa); a3 = madd(a3, v128.load32_splat(d, 12), xa);
      }
      v128.store(g0 + off, f32x4.add(v128.load(g0 + off), a0)); v128.store(g1 + off, f32x4.add(v128.load(g1 + off), a1));
      v128.store(g2 + off, f32x4.add(v128.load(g2 + off), a2)); v128.store(g3 + off, f32x4.add(v128.load(g3 + off), a3));
    }
  }
  for (; o < OC; o++) {
    const g = dweight + <usize>o * rowBytes;
    const oOff = <usize>o << 2;
    for (let j = 0; j < n; j++) {
      const off = <usize>load<i32>(list + (<usize>j << 2));
      let a = f32x4.splat(0);
      for (let b = 0; b < B; b++) {
        a = madd(a, v128.load32_splat(dout + <usize>b * doutStride + oOff), v128.load(inp + <usize>b * rowBytes + off));
      }
      v128.store(g + off, f32x4.add(v128.load(g + off), a));
    }
  }
  // column tail (C not a multiple of 4), one element at a time
  for (let oo = 0; oo < OC; oo++) {
    for (let c = C4; c < C; c++) {
      let s: f32 = 0;
      for (let b = 0; b < B; b++) s += load<f32>(dout + ((<usize>b * OC + oo) << 2)) * load<f32>(inp + ((<usize>b * C + c) << 2));
      const p = dweight + ((<usize>oo * C + c) << 2);
      store<f32>(p, load<f32>(p) + s);
    }
  }
  biasGradInto(dbias, dout, B, OC);
}

// ---------------------------------------------------------------------------------------------
// element-wise kernels

/** d[i] *= act'(z_i), through a = act(z). One loop per activation, so no branch per vector. */
export function activationBackward(d: usize, a: usize, n: i32, act: i32): void {
  if (act == ACT_SIGMOID) activationBackwardWith(d, a, n, ACT_SIGMOID);
  else if (act == ACT_RELU) activationBackwardWith(d, a, n, ACT_RELU);
  else if (act == ACT_TANH) activationBackwardWith(d, a, n, ACT_TANH);
}

// @ts-ignore: decorator
@inline function activationBackwardWith(d: usize, a: usize, n: i32, act: i32): void {
  const n4 = n & ~3;
  const one = f32x4.splat(1.0);
  const zero = f32x4.splat(0.0);
  for (let i = 0; i < n4; i += 4) {
    const off = <usize>i << 2;
    const va = v128.load(a + off);
    const vd = v128.load(d + off);
    let r: v128;
    if (act == ACT_SIGMOID) r = f32x4.mul(vd, f32x4.mul(va, f32x4.sub(one, va)));
    else if (act == ACT_RELU) r = v128.and(vd, f32x4.gt(va, zero)); // d where a > 0, else +0
    else r = f32x4.mul(vd, f32x4.sub(one, f32x4.mul(va, va)));
    v128.store(d + off, r);
  }
  for (let i = n4; i < n; i++) {
    const off = <usize>i << 2;
    const va = load<f32>(a + off);
    let g: f32;
    if (act == ACT_SIGMOID) g = va * (1 - va);
    else if (act == ACT_RELU) g = va > 0 ? 1 : 0;
    else g = 1 - va * va;
    store<f32>(d + off, load<f32>(d + off) * g);
  }
}

/**
 * The output layer's δ and the loss sum (see kernels.ts). cost 0 quadratic on sigmoid outputs,
 * 1 cross-entropy on logits: softmax with the max subtracted, four classes at a time through the
 * vector exp (the f64 Math.exp per element it replaced took 0.3 ms of a batch-1024 step).
 */
export function outputDelta(delta: usize, out: usize, labels: usize, B: i32, K: i32, cost: i32): f64 {
  let loss: f64 = 0;
  const K4 = K & ~3;
  const tail = K - K4;
  const mask = tailMask(tail);
  const tailOff = <usize>K4 << 2;
  const negInf = f32x4.splat(-Infinity);
  for (let b = 0; b < B; b++) {
    const row = out + ((<usize>b * K) << 2);
    const drow = delta + ((<usize>b * K) << 2);
    const y = <i32>load<u8>(labels + <usize>b);
    if (cost == 0) {
      for (let k = 0; k < K; k++) {
        const a = load<f32>(row + (<usize>k << 2));
        const diff = a - (k == y ? <f32>1 : <f32>0);
        loss += 0.5 * <f64>diff * <f64>diff;
        store<f32>(drow + (<usize>k << 2), diff * a * (1 - a));
      }
    } else {
      // max over the row (tail lanes read as −∞), then e^{z − max} into δ, their sum, and the scaling
      let vmax = negInf;
      for (let k = 0; k < K4; k += 4) vmax = f32x4.max(vmax, v128.load(row + (<usize>k << 2)));
      if (tail != 0) vmax = f32x4.max(vmax, v128.bitselect(v128.load(row + tailOff), negInf, mask));
      vmax = f32x4.max(vmax, f32x4.shuffle(vmax, vmax, 2, 3, 0, 1));
      const zmax = max<f32>(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1));
      const vm = f32x4.splat(zmax);
      let vsum = f32x4.splat(0);
      for (let k = 0; k < K4; k += 4) {
        const e = expv(f32x4.sub(v128.load(row + (<usize>k << 2)), vm));
        vsum = f32x4.add(vsum, e);
        v128.store(drow + (<usize>k << 2), e);
      }
      if (tail != 0) {
        const e = v128.and(expv(f32x4.sub(v128.load(row + tailOff), vm)), mask);
        vsum = f32x4.add(vsum, e);
        storeLanes(drow + tailOff, e, tail);
      }
      const sum = hsum(vsum);
      const vinv = f32x4.splat(<f32>1 / sum);
      for (let k = 0; k < K4; k += 4) {
        const p = drow + (<usize>k << 2);
        v128.store(p, f32x4.mul(v128.load(p), vinv));
      }
      if (tail != 0) storeLanes(drow + tailOff, f32x4.mul(v128.load(drow + tailOff), vinv), tail);
      const py = drow + (<usize>y << 2);
      store<f32>(py, load<f32>(py) - 1);
      loss -= <f64>load<f32>(row + (<usize>y << 2)) - <f64>zmax - Math.log(<f64>sum);
    }
  }
  return loss;
}

/** g = grad·invCount + decay·w; with momentum v = μv − ηg, w += v; else w −= ηg. */
export function sgdUpdate(w: usize, grad: usize, velocity: usize, n: i32,
  eta: f32, invCount: f32, decay: f32, momentum: f32): void {
  const n4 = n & ~3;
  const vEta = f32x4.splat(eta), vInv = f32x4.splat(invCount), vDecay = f32x4.splat(decay), vMu = f32x4.splat(momentum);
  if (momentum != 0) {
    for (let i = 0; i < n4; i += 4) {
      const off = <usize>i << 2;
      const vw = v128.load(w + off);
      const g = f32x4.add(f32x4.mul(v128.load(grad + off), vInv), f32x4.mul(vDecay, vw));
      const v = f32x4.sub(f32x4.mul(vMu, v128.load(velocity + off)), f32x4.mul(vEta, g));
      v128.store(velocity + off, v);
      v128.store(w + off, f32x4.add(vw, v));
    }
    for (let i = n4; i < n; i++) {
      const off = <usize>i << 2;
      const vw = load<f32>(w + off);
      const g = load<f32>(grad + off) * invCount + decay * vw;
      const v = momentum * load<f32>(velocity + off) - eta * g;
      store<f32>(velocity + off, v);
      store<f32>(w + off, vw + v);
    }
  } else if (decay == 0) {
    // plain SGD (the default): w −= (η/m)·grad, eight floats an iteration; this loop is the
    // step's third-largest cost at batch 10 and the general one spends two more ops a vector
    const vStep = f32x4.splat(eta * invCount);
    const n8 = n & ~7;
    for (let i = 0; i < n8; i += 8) {
      const off = <usize>i << 2;
      v128.store(w + off, f32x4.sub(v128.load(w + off), f32x4.mul(v128.load(grad + off), vStep)));
      v128.store(w + off, f32x4.sub(v128.load(w + off, 16), f32x4.mul(v128.load(grad + off, 16), vStep)), 16);
    }
    for (let i = n8; i < n4; i += 4) {
      const off = <usize>i << 2;
      v128.store(w + off, f32x4.sub(v128.load(w + off), f32x4.mul(v128.load(grad + off), vStep)));
    }
    for (let i = n4; i < n; i++) {
      const off = <usize>i << 2;
      store<f32>(w + off, load<f32>(w + off) - eta * invCount * load<f32>(grad + off));
    }
  } else {
    for (let i = 0; i < n4; i += 4) {
      const off = <usize>i << 2;
      const vw = v128.load(w + off);
      const g = f32x4.add(f32x4.mul(v128.load(grad + off), vInv), f32x4.mul(vDecay, vw));
      v128.store(w + off, f32x4.sub(vw, f32x4.mul(vEta, g)));
    }
    for (let i = n4; i < n; i++) {
      const off = <usize>i << 2;
      const vw = load<f32>(w + off);
      store<f32>(w + off, vw - eta * (load<f32>(grad + off) * invCount + decay * vw));
    }
  }
}

/**
 * w −= (η·invCount)·(a + b): the rank-order sum of the last two gradient sums of a step and plain
 * SGD in one pass over memory (the coordinator's update with two or more workers) — the same f32
 * operations in the same order as addInto(a, b) then sgdUpdate's plain path, so the same bits,
 * with one read of a whole gradient and one write of it less.
 */
export function sgdPlainSum2(w: usize, a: usize, b: usize, n: i32, eta: f32, invCount: f32): void {
  const step = eta * invCount;
  const vStep = f32x4.splat(step);
  const n8 = n & ~7;
  const n4 = n & ~3;
  for (let i = 0; i < n8; i += 8) {
    const off = <usize>i << 2;
    v128.store(w + off, f32x4.sub(v128.load(w + off), f32x4.mul(f32x4.add(v128.load(a + off), v128.load(b + off)), vStep)));
    v128.store(w + off, f32x4.sub(v128.load(w + off, 16), f32x4.mul(f32x4.add(v128.load(a + off, 16), v128.load(b + off, 16)), vStep)), 16);
  }
  for (let i = n8; i < n4; i += 4) {
    const off = <usize>i << 2;
    v128.store(w + off, f32x4.sub(v128.load(w + off), f32x4.mul(f32x4.add(v128.load(a + off), v128.load(b + off)), vStep)));
  }
  for (let i = n4; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(w + off, load<f32>(w + off) - step * (load<f32>(a + off) + load<f32>(b + off)));
  }
}

/**
 * 1 when every one of the n floats at x is finite, else 0: v·0 is 0 for a finite v and NaN for
 * NaN and ±Infinity, so a sum of them tells (no branch per element; the wire check of every
 * received parameter and gradient, ~0.2 ms per 269,322 floats in JS).
 */
export function allFinite(x: usize, n: i32): i32 {
  const zero = f32x4.splat(0);
  let acc0 = zero, acc1 = zero;
  const n8 = n & ~7;
  for (let i = 0; i < n8; i += 8) {
    const off = <usize>i << 2;
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(x + off), zero));
    acc1 = f32x4.add(acc1, f32x4.mul(v128.load(x + off, 16), zero));
  }
  const acc = f32x4.add(acc0, acc1);
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (let i = n8; i < n; i++) s += load<f32>(x + (<usize>i << 2)) * 0;
  return s == 0 ? 1 : 0;
}

/** y[i] += x[i] */
export function addInto(y: usize, x: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const off = <usize>i << 2;
    v128.store(y + off, f32x4.add(v128.load(y + off), v128.load(x + off)));
  }
  for (let i = n4; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(y + off, load<f32>(y + off) + load<f32>(x + off));
  }
}

/** dst[i] = src[i] · scale for n bytes 0..255 (pixels to inputs), 16 at a time. */
export function scaleBytes(dst: usize, src: usize, n: i32, scale: f32): void {
  const vScale = f32x4.splat(scale);
  const n16 = n & ~15;
  const zero = f32x4.splat(0);
  for (let i = 0; i < n16; i += 16) {
    const bytes = v128.load(src + <usize>i);
    const p = dst + (<usize>i << 2);
    if (!v128.any_true(bytes)) {
      // about half of MNIST's 16-pixel runs are blank: four stores instead of the conversion
      v128.store(p, zero); v128.store(p, zero, 16); v128.store(p, zero, 32); v128.store(p, zero, 48);
      continue;
    }
    const lo = i16x8.extend_low_i8x16_u(bytes);
    const hi = i16x8.extend_high_i8x16_u(bytes);
    v128.store(p, f32x4.mul(f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(lo)), vScale));
    v128.store(p, f32x4.mul(f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(lo)), vScale), 16);
    v128.store(p, f32x4.mul(f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(hi)), vScale), 32);
    v128.store(p, f32x4.mul(f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(hi)), vScale), 48);
  }
  for (let i = n16; i < n; i++) store<f32>(dst + (<usize>i << 2), <f32>load<u8>(src + <usize>i) * scale);
}

/** Sets n floats to zero. */
export function zero(x: usize, n: i32): void {
  memory.fill(x, 0, <usize>n << 2);
}

/** out[b, :] = act(out[b, :] + bias) for B rows of OC: the epilogue after an external GEMM. */
export function biasActivate(out: usize, bias: usize, B: i32, OC: i32, act: i32): void {
  // one loop per activation, so the branch is not taken per vector
  if (act == ACT_SIGMOID) biasActivateWith(out, bias, B, OC, ACT_SIGMOID);
  else if (act == ACT_RELU) biasActivateWith(out, bias, B, OC, ACT_RELU);
  else if (act == ACT_TANH) biasActivateWith(out, bias, B, OC, ACT_TANH);
  else biasActivateWith(out, bias, B, OC, ACT_IDENTITY);
}

// @ts-ignore: decorator
@inline function biasActivateWith(out: usize, bias: usize, B: i32, OC: i32, act: i32): void {
  const OC4 = OC & ~3;
  for (let b = 0; b < B; b++) {
    const row = out + ((<usize>b * OC) << 2);
    for (let o = 0; o < OC4; o += 4) {
      const p = row + (<usize>o << 2);
      v128.store(p, activateInline(f32x4.add(v128.load(p), v128.load(bias + (<usize>o << 2))), act));
    }
    for (let o = OC4; o < OC; o++) {
      const p = row + (<usize>o << 2);
      store<f32>(p, f32x4.extract_lane(activate(f32x4.splat(load<f32>(p) + load<f32>(bias + (<usize>o << 2))), act), 0));
    }
  }
}

/** dbias[OC] += Σ_b dout[b, :] (the bias gradient beside an external GEMM). */
export function biasGradInto(dbias: usize, dout: usize, B: i32, OC: i32): void {
  const OC4 = OC & ~3;
  const stride = <usize>OC << 2;
  for (let o = 0; o < OC4; o += 4) {
    let a = f32x4.splat(0);
    for (let b = 0; b < B; b++) a = f32x4.add(a, v128.load(dout + <usize>b * stride + (<usize>o << 2)));
    const p = dbias + (<usize>o << 2);
    v128.store(p, f32x4.add(v128.load(p), a));
  }
  for (let o = OC4; o < OC; o++) {
    let s: f32 = 0;
    for (let b = 0; b < B; b++) s += load<f32>(dout + ((<usize>b * OC + o) << 2));
    const p = dbias + (<usize>o << 2);
    store<f32>(p, load<f32>(p) + s);
  }
}

/** Number of full 4-column blocks of inp[B, C] that are nonzero in some row (to choose a sparse or dense path). */
export function countNonzeroBlocks(inp: usize, B: i32, C: i32, list: usize): i32 {
  return nonzeroBlocks(list, inp, 0, B, C);
}

// ---------------------------------------------------------------------------------------------
// Sparse-input products (the first layer: 81% of MNIST pixels are 0).
//
// Per example only its nonzero inputs are visited, so the work is nnz·OC instead of B·C·OC.
// Both kernels go through a transposed copy ([C, OCp], OCp = OC rounded up to 4, zero-padded)
// so that the inner loop runs along OC in contiguous vectors: the forward transposes the
// weights, the weight gradient is built transposed and added back. The scratch area holds
// that copy followed by index lists; see sparseScratchBytes.

/** Bytes of scratch the two sparse kernels need for these dimensions. */
export function sparseScratchBytes(B: i32, C: i32, OC: i32): i32 {
  const OCp = (OC + 3) & ~3;
  return C * OCp * 4 + 64 + (C + 1) * 8 + B * C * 8 + 64;
}

/** Number of nonzero entries of x[0..n). */
export function countNonzeros(x: usize, n: i32): i32 {
  const n4 = n & ~3;
  let acc = i32x4.splat(0);
  const zero = f32x4.splat(0);
  for (let i = 0; i < n4; i += 4) acc = i32x4.sub(acc, f32x4.ne(v128.load(x + (<usize>i << 2)), zero));
  let count = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
  for (let i = n4; i < n; i++) if (load<f32>(x + (<usize>i << 2)) != 0) count++;
  return count;
}

/** dst[S, Rp] = src[R, S]ᵀ (dst columns R..Rp zeroed), by 4x4 register transposes. */
function transpose(dst: usize, src: usize, R: i32, S: i32, Rp: i32): void {
  const R4 = R & ~3;
  const S4 = S & ~3;
  const srcStride = <usize>S << 2;
  const dstStride = <usize>Rp << 2;
  for (let r = 0; r < R4; r += 4) {
    const s0 = src + <usize>r * srcStride, s1 = s0 + srcStride, s2 = s1 + srcStride, s3 = s2 + srcStride;
    for (let s = 0; s < S4; s += 4) {
      const off = <usize>s << 2;
      const r0 = v128.load(s0 + off), r1 = v128.load(s1 + off), r2 = v128.load(s2 + off), r3 = v128.load(s3 + off);
      const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
      const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
      const d = dst + <usize>s * dstStride + (<usize>r << 2);
      v128.store(d, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
      v128.store(d + dstStride, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
      v128.store(d + 2 * dstStride, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
      v128.store(d + 3 * dstStride, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
    }
    for (let s = S4; s < S; s++) {
      for (let i = 0; i < 4; i++) store<f32>(dst + <usize>s * dstStride + (<usize>(r + i) << 2), load<f32>(src + <usize>(r + i) * srcStride + (<usize>s << 2)));
    }
  }
  for (let r = R4; r < Rp; r++) {
    for (let s = 0; s < S; s++) {
      store<f32>(dst + <usize>s * dstStride + (<usize>r << 2), r < R ? load<f32>(src + <usize>r * srcStride + (<usize>s << 2)) : 0);
    }
  }
}

/** The nonzero entries of row x[0..C): writes byte offsets c·rowBytes to idx and values to vals; returns how many. */
function rowNonzeros(idx: usize, vals: usize, x: usize, C: i32, rowBytes: usize): i32 {
  const C4 = C & ~3;
  const zero = f32x4.splat(0);
  let n = 0;
  for (let c = 0; c < C4; c += 4) {
    const v = v128.load(x + (<usize>c << 2));
    const m = i32x4.bitmask(f32x4.ne(v, zero));
    if (m == 0) continue;
    for (let i = 0; i < 4; i++) {
      if ((m >> i) & 1) {
        store<i32>(idx + (<usize>n << 2), <i32>(<usize>(c + i) * rowBytes));
        store<f32>(vals + (<usize>n << 2), load<f32>(x + (<usize>(c + i) << 2)));
        n++;
      }
    }
  }
  for (let c = C4; c < C; c++) {
    const v = load<f32>(x + (<usize>c << 2));
    if (v != 0) {
      store<i32>(idx + (<usize>n << 2), <i32>(<usize>c * rowBytes));
      store<f32>(vals + (<usize>n << 2), v);
      n++;
    }
  }
  return n;
}

/** Stores the first `lanes` (1..4) lanes of v at p. */
// @ts-ignore: decorator
@inline function storeLanes(p: usize, v: v128, lanes: i32): void {
  if (lanes >= 4) { v128.store(p, v); return; }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (lanes > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (lanes > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/** out[B,OC] = act(inp[B,C] · weight[OC,C]ᵀ + bias[OC]), visiting only the nonzero inputs. */
export function linearForwardSparse(out: usize, inp: usize, weight: usize, bias: usize,
  B: i32, C: i32, OC: i32, act: i32, scratch: usize): void {
  const OCp = (OC + 3) & ~3;
  const wt = scratch;
  const wtRow = <usize>OCp << 2;
  const idx = (wt + <usize>C * wtRow + 63) & ~63;
  const vals = idx + (<usize>C << 2);
  transpose(wt, weight, OC, C, OCp);
  const inRow = <usize>C << 2;
  const outRow = <usize>OC << 2;
  for (let b = 0; b < B; b++) {
    const n = rowNonzeros(idx, vals, inp + <usize>b * inRow, C, wtRow);
    const o = out + <usize>b * outRow;
    let o0 = 0;
    for (; o0 + 32 <= OCp; o0 += 32) {
      const bo = bias + (<usize>o0 << 2);
      let a0 = v128.load(bo), a1 = v128.load(bo, 16), a2 = v128.load(bo, 32), a3 = v128.load(bo, 48);
      let a4 = v128.load(bo, 64), a5 = v128.load(bo, 80), a6 = v128.load(bo, 96), a7 = v128.load(bo, 112);
      const base = wt + (<usize>o0 << 2);
      for (let j = 0; j < n; j++) {
        const s = v128.load32_splat(vals + (<usize>j << 2));
        const p = base + <usize>load<i32>(idx + (<usize>j << 2));
        a0 = madd(a0, s, v128.load(p)); a1 = madd(a1, s, v128.load(p, 16));
        a2 = madd(a2, s, v128.load(p, 32)); a3 = madd(a3, s, v128.load(p, 48));
        a4 = madd(a4, s, v128.load(p, 64)); a5 = madd(a5, s, v128.load(p, 80));
        a6 = madd(a6, s, v128.load(p, 96)); a7 = madd(a7, s, v128.load(p, 112));
      }
      const q = o + (<usize>o0 << 2);
      storeLanes(q, activate(a0, act), OC - o0); storeLanes(q + 16, activate(a1, act), OC - o0 - 4);
      storeLanes(q + 32, activate(a2, act), OC - o0 - 8); storeLanes(q + 48, activate(a3, act), OC - o0 - 12);
      storeLanes(q + 64, activate(a4, act), OC - o0 - 16); storeLanes(q + 80, activate(a5, act), OC - o0 - 20);
      storeLanes(q + 96, activate(a6, act), OC - o0 - 24); storeLanes(q + 112, activate(a7, act), OC - o0 - 28);
    }
    for (; o0 < OCp; o0 += 4) {
      let a = v128.load(bias + (<usize>o0 << 2));
      const base = wt + (<usize>o0 << 2);
      for (let j = 0; j < n; j++) {
        a = madd(a, v128.load32_splat(vals + (<usize>j << 2)), v128.load(base + <usize>load<i32>(idx + (<usize>j << 2))));
      }
      storeLanes(o + (<usize>o0 << 2), activate(a, act), OC - o0);
    }
  }
}

/** dweight[OC,C] += dout[B,OC]ᵀ · inp[B,C]; dbias += Σ_b dout[b,:], visiting only the nonzero inputs. */
export function linearBackwardParamsSparse(dweight: usize, dbias: usize, dout: usize, inp: usize,
  B: i32, C: i32, OC: i32, scratch: usize): void {
  const OCp = (OC + 3) & ~3;
  const gt = scratch;
  const gtRow = <usize>OCp << 2;
  const start = (gt + <usize>C * gtRow + 63) & ~63; // C + 1 ints: where column c's entries begin
  const cursor = start + (<usize>(C + 1) << 2); // C ints
  const rows = (cursor + (<usize>C << 2) + 63) & ~63; // nnz ints: byte offset of the example's dout row
  const inRow = <usize>C << 2;
  const doutRow = <usize>OC << 2;
  // count the nonzeros of each column, then place (row, value) pairs column by column
  memory.fill(start, 0, <usize>(C + 1) << 2);
  for (let b = 0; b < B; b++) {
    const x = inp + <usize>b * inRow;
    for (let c = 0; c < C; c++) {
      if (load<f32>(x + (<usize>c << 2)) != 0) {
        const p = start + (<usize>(c + 1) << 2);
        store<i32>(p, load<i32>(p) + 1);
      }
    }
  }
  for (let c = 0; c < C; c++) {
    const p = start + (<usize>(c + 1) << 2);
    store<i32>(p, load<i32>(p) + load<i32>(p - 4));
  }
  const nnz = load<i32>(start + (<usize>C << 2));
  const values = rows + (<usize>nnz << 2);
  memory.copy(cursor, start, <usize>C << 2);
  for (let b = 0; b < B; b++) {
    const x = inp + <usize>b * inRow;
    for (let c = 0; c < C; c++) {
      const v = load<f32>(x + (<usize>c << 2));
      if (v != 0) {
        const cp = cursor + (<usize>c << 2);
        const k = load<i32>(cp);
        store<i32>(cp, k + 1);
        store<i32>(rows + (<usize>k << 2), <i32>(<usize>b * doutRow));
        store<f32>(values + (<usize>k << 2), v);
      }
    }
  }
  // gt[c, :] = Σ over the column's entries of value · dout[row, :]
  for (let c = 0; c < C; c++) {
    const j0 = load<i32>(start + (<usize>c << 2));
    const j1 = load<i32>(start + (<usize>(c + 1) << 2));
    const g = gt + <usize>c * gtRow;
    if (j0 == j1) continue;
    let o0 = 0;
    for (; o0 + 32 <= OCp; o0 += 32) {
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
      const base = dout + (<usize>o0 << 2);
      for (let j = j0; j < j1; j++) {
        const s = v128.load32_splat(values + (<usize>j << 2));
        const p = base + <usize>load<i32>(rows + (<usize>j << 2));
        a0 = madd(a0, s, v128.load(p)); a1 = madd(a1, s, v128.load(p, 16));
        a2 = madd(a2, s, v128.load(p, 32)); a3 = madd(a3, s, v128.load(p, 48));
        a4 = madd(a4, s, v128.load(p, 64)); a5 = madd(a5, s, v128.load(p, 80));
        a6 = madd(a6, s, v128.load(p, 96)); a7 = madd(a7, s, v128.load(p, 112));
      }
      const q = g + (<usize>o0 << 2);
      v128.store(q, a0); v128.store(q, a1, 16); v128.store(q, a2, 32); v128.store(q, a3, 48);
      v128.store(q, a4, 64); v128.store(q, a5, 80); v128.store(q, a6, 96); v128.store(q, a7, 112);
    }
    for (; o0 < OCp; o0 += 4) {
      let a = f32x4.splat(0);
      const base = dout + (<usize>o0 << 2);
      for (let j = j0; j < j1; j++) {
        a = madd(a, v128.load32_splat(values + (<usize>j << 2)), v128.load(base + <usize>load<i32>(rows + (<usize>j << 2))));
      }
      v128.store(g + (<usize>o0 << 2), a);
    }
  }
  // dweight[o, c] += gt[c, o] for the columns that had entries (4x4 register transposes)
  const OC4 = OC & ~3;
  const C4 = C & ~3;
  const dwRow = <usize>C << 2;
  for (let c = 0; c < C4; c += 4) {
    const j0 = load<i32>(start + (<usize>c << 2));
    if (load<i32>(start + (<usize>(c + 4) << 2)) == j0) continue; // four empty columns
    // an empty column among the four has a stale gt row: zero it before it is read
    for (let i = 0; i < 4; i++) {
      if (load<i32>(start + (<usize>(c + i) << 2)) == load<i32>(start + (<usize>(c + i + 1) << 2))) memory.fill(gt + <usize>(c + i) * gtRow, 0, gtRow);
    }
    const g0 = gt + <usize>c * gtRow, g1 = g0 + gtRow, g2 = g1 + gtRow, g3 = g2 + gtRow;
    for (let o = 0; o < OC4; o += 4) {
      const off = <usize>o << 2;
      const r0 = v128.load(g0 + off), r1 = v128.load(g1 + off), r2 = v128.load(g2 + off), r3 = v128.load(g3 + off);
      const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
      const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
      const d = dweight + <usize>o * dwRow + (<usize>c << 2);
      v128.store(d, f32x4.add(v128.load(d), f32x4.shuffle(t0, t2, 0, 1, 4, 5)));
      v128.store(d + dwRow, f32x4.add(v128.load(d + dwRow), f32x4.shuffle(t0, t2, 2, 3, 6, 7)));
      v128.store(d + 2 * dwRow, f32x4.add(v128.load(d + 2 * dwRow), f32x4.shuffle(t1, t3, 0, 1, 4, 5)));
      v128.store(d + 3 * dwRow, f32x4.add(v128.load(d + 3 * dwRow), f32x4.shuffle(t1, t3, 2, 3, 6, 7)));
    }
    for (let o = OC4; o < OC; o++) {
      for (let i = 0; i < 4; i++) {
        const d = dweight + <usize>o * dwRow + (<usize>(c + i) << 2);
        store<f32>(d, load<f32>(d) + load<f32>(gt + <usize>(c + i) * gtRow + (<usize>o << 2)));
      }
    }
  }
  for (let c = C4; c < C; c++) {
    if (load<i32>(start + (<usize>c << 2)) == load<i32>(start + (<usize>(c + 1) << 2))) continue;
    for (let o = 0; o < OC; o++) {
      const d = dweight + <usize>o * dwRow + (<usize>c << 2);
      store<f32>(d, load<f32>(d) + load<f32>(gt + <usize>c * gtRow + (<usize>o << 2)));
    }
  }
  biasGradInto(dbias, dout, B, OC);
}

/**
 * Writes [first, last] of the columns of inp[B, C] that are nonzero in some row to range[0..2)
 * (first = C, last = −1 when all are zero). Each row is only searched outside the range found
 * so far, so after a few rows a row costs a handful of vectors: MNIST batches leave their first
 * ~40 and last ~10 pixels blank (the top rows of the image), and an external GEMM can skip them.
 */
export function nonzeroColumnRange(range: usize, inp: usize, B: i32, C: i32): void {
  const rowBytes = <usize>C << 2;
  const zero = f32x4.splat(0);
  let first = C, last = -1;
  for (let b = 0; b < B; b++) {
    const x = inp + <usize>b * rowBytes;
    // columns [0, first), four at a time; lanes at or past `first` (≤ C) are ignored
    for (let c = 0; c < first; c += 4) {
      let m = i32x4.bitmask(f32x4.ne(v128.load(x + (<usize>c << 2)), zero));
      if (first - c < 4) m &= (1 << (first - c)) - 1;
      if (m != 0) { first = c + ctz(m); break; }
    }
    if (first == C) continue; // an all-zero row (last stays as it is)
    // columns (last, C), four at a time from the right; lanes at or before `last` are ignored
    let c = max(C - 4, 0);
    while (c + 3 > last) {
      let m = i32x4.bitmask(f32x4.ne(v128.load(x + (<usize>c << 2)), zero));
      if (C - c < 4) m &= (1 << (C - c)) - 1;
      if (last >= c) m &= ~((1 << (last - c + 1)) - 1);
      if (m != 0) { last = c + 31 - clz(m); break; }
      if (c == 0) break;
      c = max(c - 4, 0);
    }
  }
  store<i32>(range, first);
  store<i32>(range, last, 4);
}

// ---------------------------------------------------------------------------------------------
// Column-block packing for an external GEMM: a batch of MNIST rows leaves 10-45% of the 4-column
// blocks zero in every example, and those columns contribute nothing to either product.

/** dst[R, 4n] = the n 4-column blocks at byte offsets list[0..n) of every row of src[R, C]. */
export function packBlocks(dst: usize, src: usize, R: i32, C: i32, list: usize, n: i32): void {
  const srcRow = <usize>C << 2;
  const dstRow = <usize>n << 4;
  for (let r = 0; r < R; r++) {
    const s = src + <usize>r * srcRow;
    const d = dst + <usize>r * dstRow;
    for (let j = 0; j < n; j++) v128.store(d + (<usize>j << 4), v128.load(s + <usize>load<i32>(list + (<usize>j << 2))));
  }
}

/** dst[r, blocks list[0..n)] += src[R, 4n] row r: the inverse of packBlocks, accumulating. */
export function unpackAddBlocks(dst: usize, src: usize, R: i32, C: i32, list: usize, n: i32): void {
  const dstRow = <usize>C << 2;
  const srcRow = <usize>n << 4;
  for (let r = 0; r < R; r++) {
    const s = src + <usize>r * srcRow;
    const d = dst + <usize>r * dstRow;
    for (let j = 0; j < n; j++) {
      const p = d + <usize>load<i32>(list + (<usize>j << 2));
      v128.store(p, f32x4.add(v128.load(p), v128.load(s + (<usize>j << 4))));
    }
  }
}

/** Rows ahead of the conversion whose cache lines the gather touches first. */
const GATHER_AHEAD = 16;

/** XOR of one byte from every 64-byte line of row[0, D): makes the loads the gather then overlaps. */
// @ts-ignore: decorator
@inline function touchRow(row: usize, D: i32): i32 {
  let s: i32 = load<u8>(row + <usize>(D - 1));
  for (let off = 0; off < D; off += 64) s ^= load<u8>(row + <usize>off);
  return s;
}

/**
 * dst[b, :] = images[indices[b]·D, +D) · scale: the batch gather from a data set held in this
 * memory. The rows are random lines of a 39 MB set, so each one starts with cache misses: the
 * lines of the row GATHER_AHEAD positions ahead are touched before a row is converted, so the
 * misses of several rows are in flight at once instead of one row after the other. Returns a
 * value of no meaning (it keeps the touching loads from being optimised away).
 */
export function gatherRows(dst: usize, images: usize, indices: usize, B: i32, D: i32, scale: f32): i32 {
  let sink: i32 = 0;
  const ahead = min(GATHER_AHEAD, B);
  for (let b = 0; b < ahead; b++) sink ^= touchRow(images + <usize>load<u32>(indices + (<usize>b << 2)) * <usize>D, D);
  for (let b = 0; b < B; b++) {
    if (b + ahead < B) sink ^= touchRow(images + <usize>load<u32>(indices + (<usize>(b + ahead) << 2)) * <usize>D, D);
    const src = images + <usize>load<u32>(indices + (<usize>b << 2)) * <usize>D;
    scaleBytes(dst + ((<usize>b * D) << 2), src, D, scale);
  }
  return sink;
}
