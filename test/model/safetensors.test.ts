import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeSafetensors, encodeSafetensors, loadIntoParams, readModelFile, saveModel, specFromMetadata, specMetadata,
} from '../../src/model/safetensors.js';
import { layoutFor } from '../../src/model/spec.js';
import { NIELSEN, seededNetwork } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/idx-fixtures.js';

describe('safetensors model files', () => {
  it('round-trips parameters and the network spec bit for bit', () => {
    const { network, params } = seededNetwork(NIELSEN, 5);
    const path = join(tempDir(), 'net.safetensors');
    saveModel(path, network.layout, params, NIELSEN);
    const file = readModelFile(path);
    expect(specFromMetadata(file.metadata, path)).toEqual(NIELSEN);
    const back = new Float32Array(network.layout.size);
    loadIntoParams(file.tensors, network.layout, back, path);
    expect(back).toEqual(params);
  });

  it('writes the documented layout: u64 LE header length, JSON header, 8-byte aligned LE floats', () => {
    const layout = layoutFor({ sizes: [2, 1], activation: 'sigmoid', cost: 'quadratic' });
    const bytes = encodeSafetensors(layout, Float32Array.from([1.5, -2, 0.25]), specMetadata(NIELSEN));
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString());
    expect(header['layers.0.weight']).toEqual({ dtype: 'F32', shape: [1, 2], data_offsets: [0, 8] });
    expect(header['layers.0.bias']).toEqual({ dtype: 'F32', shape: [1], data_offsets: [8, 12] });
    expect(header.__metadata__['dpt.sizes']).toBe('784,30,10');
    const data = new DataView(bytes.buffer, 8 + n);
    expect([data.getFloat32(0, true), data.getFloat32(4, true), data.getFloat32(8, true)]).toEqual([1.5, -2, 0.25]);
  });

  it('rejects a header length beyond the file', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    expect(() => decodeSafetensors(bytes, 'bad.safetensors')).toThrow(/bad\.safetensors: header length 1000 does not fit in the file/);
  });

  it('rejects a header that is not JSON', () => {
    const json = Buffer.from('{not json!}');
    const bytes = new Uint8Array(8 + json.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    expect(() => decodeSafetensors(bytes, 'x')).toThrow(/x: header is not valid JSON/);
  });

  it('rejects offsets that do not match the shape, and non-F32 tensors', () => {
    const make = (header: object): Uint8Array => {
      const json = Buffer.from(JSON.stringify(header));
      const bytes = new Uint8Array(8 + json.length + 8);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
      bytes.set(json, 8);
      return bytes;
    };
    expect(() => decodeSafetensors(make({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }), 'f')).toThrow(/tensor a: shape \[3\] needs 12 bytes but data_offsets span 8/);
    expect(() => decodeSafetensors(make({ a: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }), 'f')).toThrow(/dtype F16; dpt reads F32 only/);
    expect(() => decodeSafetensors(make({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), 'f')).toThrow(/outside the 8 data bytes/);
  });

  it('refuses to load a file whose tensors do not match the network', () => {
    const { network, params } = seededNetwork(NIELSEN, 5);
    const path = join(tempDir(), 'net.safetensors');
    saveModel(path, network.layout, params, NIELSEN);
    const other = layoutFor({ ...NIELSEN, sizes: [784, 20, 10] });
    const file = readModelFile(path);
    expect(() => loadIntoParams(file.tensors, other, new Float32Array(other.size), path)).toThrow(/layers\.0\.weight has shape \[30,784\] but the network needs \[20,784\]/);
  });

  it('reads a file without dpt metadata (as PyTorch writes it) given the spec', () => {
    const { network, params } = seededNetwork(NIELSEN, 5);
    const path = join(tempDir(), 'torch.safetensors');
    writeFileSync(path, encodeSafetensors(network.layout, params, { format: 'pt' }));
    const file = readModelFile(path);
    expect(specFromMetadata(file.metadata, path)).toBeNull();
    const back = new Float32Array(network.layout.size);
    loadIntoParams(file.tensors, network.layout, back, path);
    expect(back).toEqual(params);
    expect(readFileSync(path).length).toBeGreaterThan(network.layout.size * 4);
  });
});
