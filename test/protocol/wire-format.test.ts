import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FrameWriter, readInto } from '../../src/protocol/codec.js';
import { f16BitsToF32, f32ToF16Bits } from '../../src/protocol/half.js';
import { decodeHalf, ErrorFeedbackEncoder } from '../../src/protocol/wire-format.js';
import { Rng } from '../../src/tensor/rng.js';
import { codeOf } from '../helpers/protocol.js';

const gaussians = (n: number, seed: number, scale = 1): Float32Array => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.nextGaussian() * scale);
};

describe('16-bit sections', () => {
  it('round-trip through a frame as f16 and bf16, beside f32 sections, at any offset', () => {
    const x = gaussians(1001, 1);
    for (const format of ['fp16', 'bf16'] as const) {
      const enc = new ErrorFeedbackEncoder(format, x.length);
      const bits = enc.encode('x', x).slice();
      const frame = encodeFrame({ type: 'grads' }, [enc.section('g', 'x', x), ['f', x]]);
      const shifted = new Uint8Array(frame.length + 3);
      shifted.set(frame, 3);
      const d = decodeFrame(shifted.subarray(3));
      const dtype = format === 'fp16' ? 'f16' : 'bf16';
      expect(d.sections.get('g')!.dtype).toBe(dtype);
      const got = readInto(d, 'g', new Uint16Array(1001), 1001, dtype);
      expect(got).not.toEqual(bits); // the second encode carried the first one's residual
      expect(readInto(d, 'f', new Float32Array(1001), 1001)).toEqual(x);
      // the other 16-bit format, or a float32 buffer, is refused
      expect(codeOf(() => readInto(d, 'g', new Uint16Array(1001), 1001, dtype === 'f16' ? 'bf16' : 'f16'))).toBe('DPT_ERR_SHAPE');
      expect(codeOf(() => readInto(d, 'g', new Float32Array(1001), 1001))).toBe('DPT_ERR_SHAPE');
    }
  });

  it('halve the bytes of the tensor', () => {
    const x = gaussians(23_860, 2);
    const f32 = new FrameWriter().encode([['g', x]], () => ({ type: 'grads' })).length;
    const f16 = new FrameWriter().encode([new ErrorFeedbackEncoder('fp16', x.length).section('g', 'x', x)], () => ({ type: 'grads' })).length;
    expect(f16 / f32).toBeCloseTo(0.5, 2);
  });

  it('decode to the values scaled back (a mean times its count is the sum)', () => {
    const sum = Float32Array.from([3, -1024, 0.5, 0]);
    const enc = new ErrorFeedbackEncoder('fp16', 4);
    const bits = enc.encode('sum', sum, 4);
    expect(Array.from(bits, f16BitsToF32)).toEqual([0.75, -256, 0.125, 0]);
    expect(decodeHalf(new Float32Array(4), bits, 'f16', 4)).toEqual(sum);
  });

  it('refuses a value that overflows fp16 with DPT_ERR_NOT_FINITE, and NaN', () => {
    expect(codeOf(() => new ErrorFeedbackEncoder('fp16', 2).encode('g', Float32Array.from([1, 70_000])))).toBe('DPT_ERR_NOT_FINITE');
    expect(codeOf(() => new ErrorFeedbackEncoder('bf16', 1).encode('g', Float32Array.from([NaN])))).toBe('DPT_ERR_NOT_FINITE');
    // 70,000 over 1024 examples is a mean of 68: fine
    expect(codeOf(() => new ErrorFeedbackEncoder('fp16', 2).encode('g', Float32Array.from([1, 70_000]), 1024))).toBeNull();
  });
});

describe('error feedback', () => {
  // A fixed sequence of small updates, as parameters or gradients see them: what the receiver
  // adds up must track the true sum. Plain rounding loses a bias every step (0.3 of a step of
  // 2^-10 rounds down to nothing every time); with the residual the loss stays below one step.
  it('keeps the accumulated error of a sum below one rounding step, where plain rounding drifts', () => {
    const n = 64, steps = 500;
    const enc = new ErrorFeedbackEncoder('fp16', n);
    const x = new Float32Array(n);
    const exact = new Float64Array(n), fed = new Float64Array(n), plain = new Float64Array(n);
    const rng = new Rng(9);
    const base = Float32Array.from({ length: n }, () => 1 + rng.nextFloat()); // in [1, 2): fp16 step 2^-10
    for (let t = 0; t < steps; t++) {
      for (let i = 0; i < n; i++) x[i] = base[i]! + ((i * 7 + t * 3) % 10) * 1e-4;
      const bits = enc.encode('x', x);
      for (let i = 0; i < n; i++) {
        exact[i] += x[i]!;
        fed[i] += f16BitsToF32(bits[i]!);
        plain[i] += f16BitsToF32(f32ToF16Bits(x[i]!));
      }
    }
    const step = 2 ** -10;
    let worstFed = 0, worstPlain = 0;
    for (let i = 0; i < n; i++) {
      worstFed = Math.max(worstFed, Math.abs(fed[i]! - exact[i]!));
      worstPlain = Math.max(worstPlain, Math.abs(plain[i]! - exact[i]!));
    }
    expect(worstFed).toBeLessThan(step);
    expect(worstPlain).toBeGreaterThan(20 * step);
  });
});
