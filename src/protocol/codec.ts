/**
 * The one place where tensors become bytes and back. A frame is
 *
 *   [u32 LE: E, the envelope's byte length][u32 0][section 0][pad][section 1][pad]...[envelope: E bytes]
 *
 * The envelope is a small msgpackr map with a `type`, the message's fields, and `sections`: the
 * list [name, dtype, length] of the raw sections before it, in order. Sections are little-endian
 * typed-array bytes, each starting on an 8-byte boundary of the frame: V8 copies a typed array
 * into or out of shared memory (a wasm engine's buffers) by words only when both sides have the
 * same address mod 8, and a byte at a time otherwise (~66-77 µs for 95 KB against ~6-10 µs). msgpackr is kept for the small envelope only: it never yields a zero-copy
 * Float32Array and its pack() copies into a growing buffer (see docs/protocol.md). The envelope
 * comes last so a sender can time the bulk copy of its tensors and still report that time in it.
 *
 * Received bytes are copied exactly once, into a buffer the receiver owns (readInto): that copy
 * also takes care of frames that ws hands over at an unaligned offset.
 */
import { endianness } from 'node:os';
import { Packr } from 'msgpackr';
import { ProtocolError } from './errors.js';

if (endianness() !== 'LE') {
  throw new Error('dpt frames carry little-endian tensors; this big-endian host would need byte swapping, which the codec does not do');
}

/** f16 and bf16 are 16-bit float bit patterns (src/protocol/half.ts), held in a Uint16Array. */
export type Dtype = 'f32' | 'u32' | 'u8' | 'f16' | 'bf16';
export type HalfDtype = 'f16' | 'bf16';
export type Tensor = Float32Array | Uint32Array | Uint8Array | Uint16Array;
const DTYPE_BYTES: Record<Dtype, number> = { f32: 4, u32: 4, u8: 1, f16: 2, bf16: 2 };
const DTYPES = Object.keys(DTYPE_BYTES);

/** A section: a name and its tensor; a Uint16Array also says which 16-bit format it holds. */
export type Section = [string, Float32Array | Uint32Array | Uint8Array] | [string, Uint16Array, HalfDtype];

/** Where one raw section sits in a received frame. */
export interface SectionRef {
  name: string;
  dtype: Dtype;
  /** elements, not bytes */
  length: number;
  /** byte offset from the start of the frame */
  offset: number;
}

export interface DecodedFrame {
  envelope: Record<string, unknown>;
  sections: Map<string, SectionRef>;
  bytes: Uint8Array;
}

/** The frame header: the envelope length and a zero word that puts the first section at 8. */
const HEADER = 8;

/** Header bytes plus an envelope budget: what a frame may need beyond its raw sections. */
export const FRAME_OVERHEAD = HEADER + 4096;

const packr = new Packr({ useRecords: false, moreTypes: false });

function dtypeOf(t: Tensor, half?: HalfDtype): Dtype {
  if (t instanceof Float32Array) return 'f32';
  if (t instanceof Uint32Array) return 'u32';
  if (t instanceof Uint16Array) {
    if (half === undefined) throw new TypeError('a Uint16Array section must say whether it holds f16 or bf16');
    return half;
  }
  return 'u8';
}

const pad8 = (n: number): number => (n + 7) & ~7;

/**
 * Builds frames in one reusable buffer that grows when needed. The frame returned by encode()
 * is a view into that buffer: it stays valid until the next encode() on the same writer, so a
 * writer must belong to one sender that does not encode again before the peer has answered.
 */
export class FrameWriter {
  private buf: Buffer;

  constructor(initialBytes = 1024) {
    this.buf = Buffer.alloc(pad8(Math.max(16, initialBytes)));
  }

  /**
   * Copies the sections in, then asks `envelope(copyMs)` for the fields (it may report the time
   * the copy took), and appends the packed envelope.
   */
  encode(sections: Section[], envelope: (copyMs: number) => Record<string, unknown>): Buffer {
    const t0 = performance.now();
    let bytes = HEADER;
    for (const [, t] of sections) bytes += pad8(t.byteLength);
    this.reserve(bytes);
    let off = HEADER;
    const list: [string, Dtype, number][] = [];
    for (const [name, t, half] of sections) {
      copyTensor(t, this.buf, off);
      const end = off + t.byteLength;
      this.buf.fill(0, end, off + pad8(t.byteLength));
      off += pad8(t.byteLength);
      list.push([name, dtypeOf(t, half), t.length]);
    }
    const env = packr.pack({ ...envelope(performance.now() - t0), sections: list });
    this.reserve(off + env.length);
    this.buf.set(env, off);
    this.buf.writeUInt32LE(env.length, 0);
    this.buf.writeUInt32LE(0, 4);
    return this.buf.subarray(0, off + env.length);
  }

  private reserve(bytes: number): void {
    if (bytes <= this.buf.length) return;
    const next = Buffer.alloc(pad8(Math.max(bytes, this.buf.length * 2)));
    next.set(this.buf);
    this.buf = next;
  }
}

/** A one-off frame (handshake messages); the bulk path uses a FrameWriter. */
export function encodeFrame(envelope: Record<string, unknown>, sections: Section[] = []): Buffer {
  return Buffer.from(new FrameWriter(64).encode(sections, () => envelope));
}

const bad = (what: string): ProtocolError => new ProtocolError('DPT_ERR_BAD_FRAME', what);

/**
 * Parses the frame structure: header, envelope, section table, and that the byte count adds up
 * exactly (so a truncated or padded frame is refused here, before any field is looked at).
 */
export function decodeFrame(data: Uint8Array): DecodedFrame {
  if (data.length < HEADER + 1) throw bad(`a frame has at least ${HEADER + 1} bytes, got ${data.length}`);
  const E = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
  if (E === 0 || E > data.length - HEADER) throw bad(`the header announces a ${E}-byte envelope but the frame has ${data.length} bytes (truncated or not a dpt frame)`);
  let envelope: unknown;
  try {
    envelope = packr.unpack(data.subarray(data.length - E));
  } catch (e) {
    throw bad(`the envelope is not valid msgpack (${(e as Error).message})`);
  }
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope) || envelope instanceof Uint8Array) {
    throw bad('the envelope is not a map');
  }
  const env = envelope as Record<string, unknown>;
  if (typeof env.type !== 'string') throw bad('the envelope has no string field `type`');
  const list = env.sections ?? [];
  if (!Array.isArray(list) || list.length > 8) throw bad('`sections` must be a list of at most 8 [name, dtype, length] entries');
  const sections = new Map<string, SectionRef>();
  let off = HEADER;
  for (const entry of list) {
    if (!Array.isArray(entry) || entry.length !== 3) throw bad('each section entry must be [name, dtype, length]');
    const [name, dtype, length] = entry as unknown[];
    if (typeof name !== 'string' || sections.has(name)) throw bad(`section name ${String(name)} is not a string or is repeated`);
    if (typeof dtype !== 'string' || !DTYPES.includes(dtype)) throw bad(`section ${name} has unknown dtype ${String(dtype)} (${DTYPES.join(', ')})`);
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) throw bad(`section ${name} has invalid length ${String(length)}`);
    sections.set(name, { name, dtype: dtype as Dtype, length, offset: off });
    off += pad8(length * DTYPE_BYTES[dtype as Dtype]);
    if (off > data.length) break;
  }
  if (off + E !== data.length) {
    throw bad(`the sections and envelope need ${off + E} bytes but the frame has ${data.length} (truncated or corrupted)`);
  }
  return { envelope: env, sections, bytes: data };
}

/**
 * Copies section `name` into `dest` (the receiver's own buffer) after checking its dtype (for a
 * Uint16Array dest, `half` says which format is expected) and that it holds exactly `length`
 * elements; returns the filled prefix of dest.
 */
export function readInto<T extends Tensor>(frame: DecodedFrame, name: string, dest: T, length: number, half?: HalfDtype): T {
  const ref = frame.sections.get(name);
  if (ref === undefined) throw new ProtocolError('DPT_ERR_SHAPE', `the ${String(frame.envelope.type)} message has no ${name} section`);
  const want = dtypeOf(dest, half);
  if (ref.dtype !== want) throw new ProtocolError('DPT_ERR_SHAPE', `section ${name} is ${ref.dtype}, expected ${want}`);
  if (ref.length !== length) throw new ProtocolError('DPT_ERR_SHAPE', `section ${name} has ${ref.length} elements, expected ${length}`);
  if (length > dest.length) throw new ProtocolError('DPT_ERR_SHAPE', `section ${name} has ${length} elements, more than the ${dest.length} this side holds`);
  const n = length * DTYPE_BYTES[want];
  const at = frame.bytes.byteOffset + ref.offset;
  if (want === 'u8') dest.set(frame.bytes.subarray(ref.offset, ref.offset + n));
  else if (dest instanceof Uint16Array) {
    // 16-bit sections land in a plain (never shared) buffer, where any alignment copies fast
    new Uint8Array(dest.buffer, dest.byteOffset, n).set(frame.bytes.subarray(ref.offset, ref.offset + n));
  }
  else if (at % 4 === 0 && (at - dest.byteOffset) % 8 === 0) dest.set(want === 'f32' ? new Float32Array(frame.bytes.buffer, at, length) : new Uint32Array(frame.bytes.buffer, at, length));
  else {
    // ws handed the frame over at an offset that does not line up with dest mod 8: realign
    // through one plain copy (copying into shared memory across alignments goes byte by byte)
    const aligned = new Uint8Array(n);
    aligned.set(frame.bytes.subarray(ref.offset, ref.offset + n));
    dest.set(want === 'f32' ? new Float32Array(aligned.buffer) : new Uint32Array(aligned.buffer));
  }
  return dest.subarray(0, length) as T;
}

/**
 * Copies a tensor's bytes into buf at off, as elements of its own type when both addresses agree
 * mod 8 (sections start at multiples of 8 and engine buffers are 64-byte aligned, so they do):
 * from shared memory a byte-view copy goes a byte at a time, ~77 µs for 95 KB against ~6 µs.
 */
function copyTensor(t: Tensor, buf: Buffer, off: number): void {
  const at = buf.byteOffset + off;
  if (t instanceof Uint8Array || t instanceof Uint16Array || at % 4 !== 0 || (at - t.byteOffset) % 8 !== 0) {
    buf.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), off);
  } else if (t instanceof Float32Array) {
    new Float32Array(buf.buffer, at, t.length).set(t);
  } else {
    new Uint32Array(buf.buffer, at, t.length).set(t);
  }
}

/** Bytes a WebSocket frame of this payload occupies on the wire (RFC 6455 header + mask key). */
export function wireBytes(payload: number, masked: boolean): number {
  const len = payload < 126 ? 0 : payload < 65536 ? 2 : 8;
  return 2 + len + (masked ? 4 : 0) + payload;
}
