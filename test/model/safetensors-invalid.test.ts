/**
 * Model files that are not what they claim: each is refused with a ModelFileError (which the CLI
 * prints as a one-line error, not a crash) naming what is wrong, never a TypeError or RangeError
 * from deep inside the decoder. And the edge cases that are valid.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeSafetensors, encodeSafetensors, loadIntoParams, ModelFileError, readModelFile, specFromMetadata, specMetadata,
} from '../../src/model/safetensors.js';
import { layoutFor } from '../../src/model/spec.js';
import { ParamLayout } from '../../src/tensor/layout.js';
import { tempDir } from '../helpers/idx-fixtures.js';

/** A file with this JSON header (its length written exactly) and `dataBytes` bytes of data. */
function fileWith(header: unknown, dataBytes = 16): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  return bytes;
}

function refusal(bytes: Uint8Array): ModelFileError {
  try {
    decodeSafetensors(bytes, 'bad.safetensors');
  } catch (e) {
    expect(e).toBeInstanceOf(ModelFileError);
    expect((e as Error).name).toBe('ModelFileError'); // the CLI tells its own errors from crashes by name
    expect((e as Error).message).toMatch(/^bad\.safetensors: /);
    return e as ModelFileError;
  }
  throw new Error('the file was accepted');
}

describe('decodeSafetensors refuses', () => {
  it('a file shorter than its 8-byte header length', () => {
    refusal(new Uint8Array(7));
    refusal(new Uint8Array(0));
  });

  it('a header length even one byte past the end of the file', () => {
    const bytes = fileWith({ __metadata__: {} }, 0);
    expect(decodeSafetensors(bytes, 'x').metadata).toEqual({});
    new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length - 8 + 1), true);
    expect(refusal(bytes).message).toMatch(/header length/);
  });

  it('a header that is JSON but not an object', () => {
    for (const header of [[], 5, 'text', null]) refusal(fileWith(header));
  });

  it('__metadata__ that is not an object of strings', () => {
    for (const metadata of [5, 'abc', null]) expect(refusal(fileWith({ __metadata__: metadata })).message).toMatch(/__metadata__/);
    expect(refusal(fileWith({ __metadata__: { 'dpt.sizes': 784 } })).message).toMatch(/dpt\.sizes/);
  });

  it('a shape that is not a list of non-negative integers, even when its element count fits the offsets', () => {
    for (const shape of [4, [-2, -2], [-1, -4, 1], [0.5, 8], ['4']]) {
      expect(refusal(fileWith({ w: { dtype: 'F32', shape, data_offsets: [0, 16] } })).message).toMatch(/tensor w/);
    }
  });

  it('data_offsets that are not two non-negative integers', () => {
    for (const data_offsets of ['0,16', [0, 16, 99], [16], [-16, 0], [0.5, 16.5], [0, '16']]) {
      expect(refusal(fileWith({ w: { dtype: 'F32', shape: [4], data_offsets } })).message).toMatch(/tensor w/);
    }
  });
});

describe('decodeSafetensors accepts', () => {
  it('a tensor with no elements', () => {
    const { tensors } = decodeSafetensors(fileWith({ empty: { dtype: 'F32', shape: [0], data_offsets: [0, 0] } }, 0), 'x');
    expect(tensors.get('empty')).toEqual({ dtype: 'F32', shape: [0], data: new Float32Array(0) });
  });

  it('metadata in any language, keeping the data 8-byte aligned', () => {
    const layout = layoutFor({ sizes: [2, 1], activation: 'sigmoid', cost: 'quadratic' });
    const params = Float32Array.from([1.5, -2, 0.25]);
    const metadata = { note: 'η = 0.1, λ = 5 ✓' };
    const bytes = encodeSafetensors(layout, params, metadata);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const back = decodeSafetensors(bytes, 'x');
    expect(back.metadata).toEqual(metadata);
    expect(back.tensors.get('layers.0.weight')).toEqual({ dtype: 'F32', shape: [1, 2], data: Float32Array.from([1.5, -2]) });
  });

  it('marks the file as PyTorch-format, which PyTorch-side loaders check', () => {
    const layout = layoutFor({ sizes: [2, 1], activation: 'sigmoid', cost: 'quadratic' });
    const meta = decodeSafetensors(encodeSafetensors(layout, new Float32Array(3), specMetadata({ sizes: [2, 1], activation: 'sigmoid', cost: 'quadratic' })), 'x').metadata;
    expect(meta.format).toBe('pt');
  });
});

describe('the network a file describes', () => {
  it('is refused when its metadata describes an impossible network', () => {
    for (const bad of [
      { 'dpt.sizes': '784,0,10' }, { 'dpt.sizes': '784,x,10' }, { 'dpt.sizes': '784,1.5,10' }, { 'dpt.sizes': '784,-3,10' },
      { 'dpt.activation': 'softplus' }, { 'dpt.cost': 'hinge' },
    ]) {
      const metadata = { 'dpt.sizes': '784,30,10', 'dpt.activation': 'relu', 'dpt.cost': 'cross-entropy', ...bad };
      expect(() => specFromMetadata(metadata, 'f')).toThrow(ModelFileError);
    }
  });

  it('may have one-unit layers and any activation and cost', () => {
    expect(specFromMetadata({ 'dpt.sizes': '3,1,2', 'dpt.activation': 'tanh', 'dpt.cost': 'cross-entropy' }, 'f'))
      .toEqual({ sizes: [3, 1, 2], activation: 'tanh', cost: 'cross-entropy' });
  });

  it('must hold every tensor the network needs; the error names the missing one', () => {
    const layout = layoutFor({ sizes: [2, 1], activation: 'sigmoid', cost: 'quadratic' });
    const onlyWeight = new ParamLayout([{ name: 'layers.0.weight', shape: [1, 2], decays: true }]);
    const { tensors } = decodeSafetensors(encodeSafetensors(onlyWeight, new Float32Array(2), {}), 'x');
    expect(() => loadIntoParams(tensors, layout, new Float32Array(3), 'f')).toThrow(ModelFileError);
    expect(() => loadIntoParams(tensors, layout, new Float32Array(3), 'f')).toThrow(/layers\.0\.bias/);
    expect(() => loadIntoParams(new Map(), layout, new Float32Array(3), 'f')).toThrow(ModelFileError);
  });

  it('a path that cannot be read is a ModelFileError naming the path and the cause', () => {
    const path = join(tempDir(), 'missing.safetensors');
    expect(() => readModelFile(path)).toThrow(ModelFileError);
    expect(() => readModelFile(path)).toThrow(/missing\.safetensors.*ENOENT/);
  });
});
