/**
 * What a float32 tensor looks like on the wire (--wire fp32|fp16|bf16), and the error feedback
 * that makes 16-bit formats lose nothing over time. The sender keeps a residual r (float32, one
 * per element) and for each tensor x sends q = round((x + r) / scale), then keeps
 * r ← (x + r) − scale · q: what rounding took off this time is added back next time. The values
 * the receiver gets then telescope: Σ_t scale·q_t = Σ_t x_t + r_0 − r_T, so the accumulated error
 * is the last residual, which stays within half a rounding step of one element (not the sum of T).
 *
 * fp32 sends the float32 tensor itself, bit for bit as before this option existed.
 */
import type { WireFormat } from '../config.js';
import type { HalfDtype, Section } from './codec.js';
import { ProtocolError } from './errors.js';
import { f16Table, f32ToBf16Bits, f32ToF16Bits } from './half.js';

export type { WireFormat };

export const HALF_DTYPE: Record<Exclude<WireFormat, 'fp32'>, HalfDtype> = { fp16: 'f16', bf16: 'bf16' };

/** Bytes one element takes on the wire. */
export const wireElementBytes = (w: WireFormat): number => (w === 'fp32' ? 4 : 2);

/** Encodes float32 tensors of one fixed length in a 16-bit format, with its own residual. */
export class ErrorFeedbackEncoder {
  private readonly residual: Float32Array;
  private readonly out: Uint16Array;
  private readonly toBits: (x: number) => number;
  private readonly toFloat: (bits: number) => number;
  readonly dtype: HalfDtype;

  constructor(readonly format: Exclude<WireFormat, 'fp32'>, length: number) {
    this.residual = new Float32Array(length);
    this.out = new Uint16Array(length);
    this.dtype = HALF_DTYPE[format];
    this.toBits = format === 'fp16' ? f32ToF16Bits : f32ToBf16Bits;
    const table = f16Table();
    this.toFloat = format === 'fp16' ? (h) => table[h]! : bf16ToFloat;
  }

  /**
   * Rounds (x + r) / scale to the format, carries what rounding lost (in x's units) into r, and
   * returns the bits (a view valid until the next encode). A value that overflows the format
   * (fp16 beyond ±65504) is refused with DPT_ERR_NOT_FINITE naming `what` and the element.
   */
  encode(what: string, x: Float32Array, scale = 1): Uint16Array {
    // engine buffers may be longer than the tensor: the encoder's length is the tensor's
    const n = this.residual.length;
    if (x.length < n) throw new RangeError(`${what} has ${x.length} elements, the encoder ${n}`);
    const { residual: r, out, toBits, toFloat } = this;
    for (let i = 0; i < n; i++) {
      const v = x[i]! + r[i]!;
      const bits = toBits(v / scale);
      const back = toFloat(bits);
      if (back - back !== 0) {
        throw new ProtocolError('DPT_ERR_NOT_FINITE', `${what}[${i}] is ${v / scale}, which is ${back} in ${this.format}${this.format === 'fp16' ? ' (largest finite 65504): use --wire bf16 or fp32' : ''}`);
      }
      out[i] = bits;
      r[i] = v - back * scale;
    }
    return out.subarray(0, n);
  }

  /** The section that carries x, encoded. */
  section(name: string, what: string, x: Float32Array, scale = 1): Section {
    return [name, this.encode(what, x, scale), this.dtype];
  }
}

const bf16View = new Float32Array(1);
const bf16Bits = new Uint32Array(bf16View.buffer);
function bf16ToFloat(b: number): number {
  bf16Bits[0] = b << 16;
  return bf16View[0]!;
}

/** dest[i] = scale · value(bits[i]): the float32 tensor a 16-bit section stands for. */
export function decodeHalf(dest: Float32Array, bits: Uint16Array, dtype: HalfDtype, scale = 1): Float32Array {
  const n = bits.length;
  if (dtype === 'f16') {
    const table = f16Table();
    for (let i = 0; i < n; i++) dest[i] = table[bits[i]!]! * scale;
  } else {
    for (let i = 0; i < n; i++) dest[i] = bf16ToFloat(bits[i]!) * scale;
  }
  return dest.subarray(0, n);
}
