/**
 * 16-bit floats for the wire: IEEE 754 binary16 (fp16: 5-bit exponent, 10-bit mantissa, largest
 * finite 65504) and bfloat16 (bf16: the top 16 bits of a float32). Conversions from float32 round
 * to nearest, ties to even; Node 20 has no Float16Array, so they work on the float32 bit pattern.
 * A value too large for fp16 becomes ±Infinity here: the caller decides whether that is an error.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The fp16 bit pattern nearest to x (ties to even); NaN stays NaN, |x| ≥ 65520 becomes ±Infinity. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00);
  // 65520 = 0x477ff000 is halfway between 65504 and the next step (65536): ties to even go up
  if (abs >= 0x477ff000) return sign | 0x7c00;
  const e = abs >>> 23;
  if (e < 113) {
    // below 2^-14, the smallest normal fp16: a subnormal, m × 2^-24 with m = round(|x| / 2^-24)
    const shift = 126 - e; // |x| = (1.mantissa × 2^23) × 2^(e−150), and 2^(e−150) / 2^-24 = 2^-shift
    if (shift > 24) return sign; // below half the smallest subnormal (2^-25), or exactly half: even is 0
    const m = (abs & 0x7fffff) | 0x800000;
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) === 1)) q++;
    return sign | q; // q may carry into 0x400, the smallest normal, which is the right pattern
  }
  let h = ((e - 112) << 10) | ((abs & 0x7fffff) >>> 13);
  const rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is correct
  return sign | h;
}

/** The float32 value of an fp16 bit pattern (exact: every fp16 value is a float32). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** The bf16 bit pattern nearest to x (ties to even); NaN stays NaN (quiet). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}

/** Every fp16 pattern's value: decoding a tensor is then one table look-up per element. */
let F16_TABLE: Float32Array | null = null;
export function f16Table(): Float32Array {
  if (F16_TABLE === null) {
    F16_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) F16_TABLE[h] = f16BitsToF32(h);
  }
  return F16_TABLE;
}
