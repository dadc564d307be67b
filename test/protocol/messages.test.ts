import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../src/protocol/codec.js';
import { codeOf } from '../helpers/protocol.js';
import { checkFinite, parseGrads, parseHello, parseSetup, parseStep, PROTOCOL_VERSION } from '../../src/protocol/messages.js';

const frame = (env: Record<string, unknown>) => decodeFrame(encodeFrame(env));


const timing = { loadMs: 0.1, computeMs: 1, decodeMs: 0.2, encodeMs: 0.05 };
const goodGrads = { type: 'grads', step: 4, count: 5, loss: 1.5, timing };

describe('message validation', () => {
  it('accepts a well-formed grads envelope for the outstanding step', () => {
    expect(parseGrads(frame(goodGrads), { step: 4, count: 5 })).toEqual(goodGrads);
  });

  it('refuses grads for another step, or with none outstanding, as stale', () => {
    expect(codeOf(() => parseGrads(frame({ ...goodGrads, step: 3 }), { step: 4, count: 5 }))).toBe('DPT_ERR_STALE_STEP');
    expect(codeOf(() => parseGrads(frame(goodGrads), null))).toBe('DPT_ERR_STALE_STEP');
  });

  it('refuses a non-finite loss or timing, a wrong count, and fields of the wrong type', () => {
    expect(codeOf(() => parseGrads(frame({ ...goodGrads, loss: NaN }), { step: 4, count: 5 }))).toBe('DPT_ERR_NOT_FINITE');
    expect(codeOf(() => parseGrads(frame({ ...goodGrads, timing: { ...timing, computeMs: Infinity } }), { step: 4, count: 5 }))).toBe('DPT_ERR_NOT_FINITE');
    expect(codeOf(() => parseGrads(frame({ ...goodGrads, count: 6 }), { step: 4, count: 5 }))).toBe('DPT_ERR_SHAPE');
    expect(codeOf(() => parseGrads(frame({ ...goodGrads, step: '4' }), { step: 4, count: 5 }))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => parseGrads(frame({ ...goodGrads, timing: 3 }), { step: 4, count: 5 }))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => parseGrads(frame({ ...goodGrads, loss: -1 }), { step: 4, count: 5 }))).toBe('DPT_ERR_BAD_FRAME');
  });

  it('checks the version before anything else in hello and setup', () => {
    expect(codeOf(() => parseHello(frame({ type: 'hello', version: PROTOCOL_VERSION + 1 })))).toBe('DPT_ERR_VERSION');
    expect(codeOf(() => parseSetup(frame({ type: 'setup', version: 0 })))).toBe('DPT_ERR_VERSION');
    expect(codeOf(() => parseHello(frame({ type: 'hello', version: PROTOCOL_VERSION, proof: 1, nonce: 'n', host: 'h', pid: 1 })))).toBe('DPT_ERR_BAD_FRAME');
  });

  it('refuses a message of the wrong type for the state with DPT_ERR_PROTOCOL', () => {
    expect(codeOf(() => parseHello(frame(goodGrads)))).toBe('DPT_ERR_PROTOCOL');
  });

  it('validates a setup: spec, kernels, data mode, and a digest with --data local', () => {
    const setup = {
      type: 'setup', version: PROTOCOL_VERSION, proof: 'p', spec: { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' },
      layoutHash: 'abcd', layoutSize: 23_860, maxShard: 5, kernels: 'js', data: 'local', trainCount: 1009, dataDigest: 'd', maxPayload: 100_000, wire: 'fp16',
    };
    expect(parseSetup(frame(setup)).spec.sizes).toEqual([784, 30, 10]);
    expect(codeOf(() => parseSetup(frame({ ...setup, spec: { ...setup.spec, activation: 'gelu' } })))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => parseSetup(frame({ ...setup, kernels: 'cuda' })))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => parseSetup(frame({ ...setup, dataDigest: null })))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => parseSetup(frame({ ...setup, maxShard: 0 })))).toBe('DPT_ERR_BAD_FRAME');
    expect(parseSetup(frame(setup)).wire).toBe('fp16');
    expect(codeOf(() => parseSetup(frame({ ...setup, wire: 'fp8' })))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => parseSetup(frame({ ...setup, wire: undefined })))).toBe('DPT_ERR_BAD_FRAME');
  });

  it('bounds a step\'s shard by the setup\'s max shard', () => {
    expect(parseStep(frame({ type: 'step', step: 0, count: 5 }), 5).count).toBe(5);
    expect(codeOf(() => parseStep(frame({ type: 'step', step: 0, count: 6 }), 5))).toBe('DPT_ERR_BAD_FRAME');
    expect(codeOf(() => parseStep(frame({ type: 'step', step: -1, count: 1 }), 5))).toBe('DPT_ERR_BAD_FRAME');
  });

  it('checkFinite names the first NaN or infinity', () => {
    const x = new Float32Array(10);
    expect(() => checkFinite('g', x)).not.toThrow();
    x[7] = -Infinity;
    expect(() => checkFinite('g', x)).toThrow(/g\[7\] is -Infinity/);
    x[3] = NaN;
    expect(() => checkFinite('g', x)).toThrow(/g\[3\] is NaN/);
  });
});
