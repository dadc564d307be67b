import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FrameWriter, readInto, wireBytes } from '../../src/protocol/codec.js';
import { codeOf } from '../helpers/protocol.js';
import { Rng } from '../../src/tensor/rng.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';


function sample() {
  const rng = new Rng(3);
  const params = new Float32Array(1001);
  for (let i = 0; i < params.length; i++) params[i] = rng.nextGaussian();
  const indices = Uint32Array.from([7, 0, 49_999, 12]);
  const labels = Uint8Array.from([1, 2, 3]); // 3 bytes: the next section needs padding
  return { params, indices, labels };
}

describe('codec', () => {
  it('round-trips the envelope and every section bit for bit', () => {
    const { params, indices, labels } = sample();
    const frame = encodeFrame({ type: 'step', step: 9, count: 4 }, [['labels', labels], ['params', params], ['indices', indices]]);
    const d = decodeFrame(frame);
    expect(d.envelope).toMatchObject({ type: 'step', step: 9, count: 4 });
    expect(readInto(d, 'params', new Float32Array(2000), 1001)).toEqual(params);
    expect(readInto(d, 'indices', new Uint32Array(4), 4)).toEqual(indices);
    expect(readInto(d, 'labels', new Uint8Array(3), 3)).toEqual(labels);
  });

  it('decodes a frame that sits at an odd offset of its buffer (one copy, no misaligned view)', () => {
    const { params } = sample();
    const frame = encodeFrame({ type: 'grads' }, [['grads', params]]);
    for (const shift of [1, 2, 3]) {
      const host = Buffer.alloc(frame.length + shift);
      frame.copy(host, shift);
      const d = decodeFrame(host.subarray(shift));
      expect(readInto(d, 'grads', new Float32Array(params.length), params.length)).toEqual(params);
    }
  });

  it('copies tensors out of and into a wasm engine\'s shared memory, at any frame offset', () => {
    const { params } = sample();
    const wasm = createWasmKernels();
    const src = wasm.alloc(params.length);
    src.set(params);
    const writer = new FrameWriter(64);
    const frame = Buffer.from(writer.encode([['labels', Uint8Array.of(1, 2, 3)], ['params', src]], () => ({ type: 'step' })));
    for (const shift of [0, 1, 4, 6]) {
      const host = Buffer.alloc(frame.length + shift);
      frame.copy(host, shift);
      const dest = wasm.alloc(params.length + 3).subarray(shift % 2, shift % 2 + params.length);
      expect(readInto(decodeFrame(host.subarray(shift)), 'params', dest, params.length), `frame at +${shift}`).toEqual(params);
    }
  });

  it('refuses every proper prefix of a frame as truncated', () => {
    const { params, labels } = sample();
    const frame = encodeFrame({ type: 'step', step: 1 }, [['params', params.subarray(0, 10)], ['labels', labels]]);
    for (let n = 0; n < frame.length; n++) {
      expect(codeOf(() => decodeFrame(frame.subarray(0, n))), `prefix of ${n}`).toBe('DPT_ERR_BAD_FRAME');
    }
    expect(codeOf(() => decodeFrame(Buffer.concat([frame, Buffer.alloc(4)])))).toBe('DPT_ERR_BAD_FRAME');
  });

  it('refuses garbage: random bytes, a non-map envelope, bad section tables', () => {
    const rng = new Rng(9);
    for (let t = 0; t < 200; t++) {
      const bytes = new Uint8Array(1 + rng.nextInt(64));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rng.nextInt(256);
      const code = codeOf(() => decodeFrame(bytes));
      expect(code === 'DPT_ERR_BAD_FRAME' || code === null).toBe(true);
    }
    expect(codeOf(() => decodeFrame(encodeFrame({ type: 7 } as unknown as Record<string, unknown>)))).toBe('DPT_ERR_BAD_FRAME');
    // envelopes written by hand (the encoder would write a correct section table)
    const raw = (env: unknown, body = 0) => {
      const e = pack(env);
      const b = Buffer.alloc(8 + body + e.length);
      b.writeUInt32LE(e.length, 0);
      e.copy(b, 8 + body);
      return b;
    };
    expect(codeOf(() => decodeFrame(raw({ type: 'x', sections: [['a', 'f32', 1]] }, 8)))).toBeNull();
    expect(codeOf(() => decodeFrame(raw({ type: 'x', sections: [['a', 'f32', 1]] }, 4)))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => decodeFrame(raw({ type: 'x', sections: [['a', 'f64', 1]] }, 8)))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => decodeFrame(raw({ type: 'x', sections: [['a', 'f32', -1]] })))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => decodeFrame(raw({ type: 'x', sections: [['a', 'u8', 1], ['a', 'u8', 1]] }, 8)))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => decodeFrame(raw({ type: 'x', sections: [['a', 'f32', 2 ** 40]] }, 4)))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => decodeFrame(raw([1, 2, 3])))).toBe('DPT_ERR_BAD_FRAME');
  });

  it('readInto refuses a section of the wrong dtype, length, or a missing one', () => {
    const { params } = sample();
    const d = decodeFrame(encodeFrame({ type: 'grads' }, [['grads', params]]));
    expect(codeOf(() => readInto(d, 'grads', new Float32Array(2000), 1000))).toBe('DPT_ERR_SHAPE');
    expect(codeOf(() => readInto(d, 'grads', new Uint32Array(2000), 1001))).toBe('DPT_ERR_SHAPE');
    expect(codeOf(() => readInto(d, 'params', new Float32Array(2000), 1001))).toBe('DPT_ERR_SHAPE');
    expect(codeOf(() => readInto(d, 'grads', new Float32Array(1000), 1001))).toBe('DPT_ERR_SHAPE');
  });

  it('a FrameWriter reuses its buffer and reports the copy time in the envelope', () => {
    const w = new FrameWriter(16);
    const { params } = sample();
    const a = w.encode([['grads', params]], (ms) => ({ type: 'grads', copyMs: ms }));
    const copyMs = decodeFrame(a).envelope.copyMs as number;
    expect(copyMs).toBeGreaterThanOrEqual(0);
    const b = w.encode([['grads', params]], () => ({ type: 'grads', copyMs: 0 }));
    expect(b.buffer).toBe(a.buffer);
  });

  it('counts WebSocket header and mask bytes', () => {
    expect(wireBytes(100, false)).toBe(102);
    expect(wireBytes(1000, true)).toBe(1008);
    expect(wireBytes(95_440, false)).toBe(95_450);
  });
});
