import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/protocol/half.js';
import { Rng } from '../../src/tensor/rng.js';

/** Every finite non-negative fp16 value and +Infinity, ascending: the naive reference searches it. */
const POSITIVE_F16: number[] = Array.from({ length: 0x7c01 }, (_, h) => f16BitsToF32(h));

/** The nearest fp16 pattern by linear search (ties to the even pattern); beyond 65504, the IEEE rule. */
function naiveF16(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(Math.fround(x));
  if (a >= 65520) return sign | 0x7c00; // halfway to 2^16 and beyond round to Infinity
  let best = 0;
  for (let h = 1; h < 0x7c00; h++) {
    const d = Math.abs(POSITIVE_F16[h]! - a), db = Math.abs(POSITIVE_F16[best]! - a);
    if (d < db || (d === db && (h & 1) === 0)) best = h;
  }
  return sign | best;
}

function naiveBf16(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer)[0]!;
  const down = bits >>> 16, up = down + 1;
  const dd = Math.abs(bf16BitsToF32(down) - f[0]!), du = Math.abs(bf16BitsToF32(up) - f[0]!);
  return du < dd || (du === dd && (up & 1) === 0) ? up : down;
}

describe('fp16', () => {
  it('gives the known bit patterns', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16Bits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f32ToF16Bits(0)).toBe(0);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f16BitsToF32(f32ToF16Bits(NaN))).toBeNaN();
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
  });

  it('rounds ties to even and overflows to Infinity at 65520', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and 1+2^-10: even is 1
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway between odd 0x3c01 and 0x3c02
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // half the smallest subnormal: to even 0
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002);
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e6)).toBe(0xfc00);
  });

  it('agrees with a nearest-value search on random values of every magnitude', () => {
    const rng = new Rng(4);
    for (let i = 0; i < 600; i++) {
      const x = Math.fround((rng.nextFloat() * 2 - 1) * 2 ** Math.floor(rng.nextFloat() * 44 - 28));
      expect(f32ToF16Bits(x), `x = ${x}`).toBe(naiveF16(x));
    }
  });

  it('round-trips every finite pattern exactly', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      if (((h >>> 10) & 0x1f) !== 31 && f32ToF16Bits(f16BitsToF32(h)) !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });
});

describe('bf16', () => {
  it('keeps the top 16 bits, rounding ties to even', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // halfway, even stays
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // halfway from odd 0x3f81: up
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(bf16BitsToF32(f32ToBf16Bits(NaN))).toBeNaN();
    expect(f32ToBf16Bits(3.4e38)).toBe(0x7f80); // beyond bf16's largest finite (~3.39e38)
  });

  it('agrees with picking the nearer of the two neighbours', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 2000; i++) {
      const x = Math.fround(rng.nextGaussian() * 2 ** Math.floor(rng.nextFloat() * 60 - 30));
      expect(f32ToBf16Bits(x), `x = ${x}`).toBe(naiveBf16(x));
    }
  });
});
