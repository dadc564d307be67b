/**
 * Model files in the safetensors format, so PyTorch (safetensors.torch.load_file) and other
 * tools read what dpt writes and dpt starts from their weights: 8-byte little-endian header
 * length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__:
 * {string: string}}, then the raw little-endian tensor bytes. We write F32 only, and keep the
 * network spec in __metadata__ so a file says what network it holds.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { ParamLayout } from '../tensor/layout.js';
import { COSTS, HIDDEN_ACTIVATIONS, type NetworkSpec } from './spec.js';

export class ModelFileError extends Error {
  override readonly name = 'ModelFileError';
}

export interface SafeTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

const MAX_HEADER = 100 * 1024 * 1024;

export function encodeSafetensors(layout: ParamLayout, params: Float32Array, metadata: Record<string, string>): Uint8Array {
  layout.check(params);
  const header: Record<string, unknown> = { __metadata__: metadata };
  for (const t of layout.tensors) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [t.offset * 4, (t.offset + t.size) * 4] };
  }
  let json = JSON.stringify(header);
  // pad with spaces so the data starts 8-byte aligned, as the reference writer does
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + params.length * 4);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  const data = new DataView(out.buffer, 8 + headerBytes.length);
  for (let i = 0; i < params.length; i++) data.setFloat32(i * 4, params[i]!, true);
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, source: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const fail = (why: string): never => {
    throw new ModelFileError(`${source}: ${why}; is this a safetensors file written by dpt or safetensors.torch.save_file?`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) fail(`header length ${n} does not fit in the file (${bytes.length} bytes)`);
  const headerLength = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8'));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafeTensor>();
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const t = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (t.dtype !== 'F32') fail(`tensor ${name} has dtype ${String(t.dtype)}; dpt reads F32 only (convert with tensor.float())`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor ${name} has an invalid shape`);
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor ${name} has invalid data_offsets`);
    const [begin, end] = off as [number, number];
    const count = (t.shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLength) fail(`tensor ${name}: data_offsets [${begin}, ${end}] lie outside the ${dataLength} data bytes`);
    if (end - begin !== count * 4) fail(`tensor ${name}: shape ${JSON.stringify(t.shape)} needs ${count * 4} bytes but data_offsets span ${end - begin}`);
    const data = new Float32Array(count);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + dataStart + begin, end - begin);
    for (let i = 0; i < count; i++) data[i] = dv.getFloat32(i * 4, true);
    tensors.set(name, { dtype: 'F32', shape: t.shape as number[], data });
  }
  return { tensors, metadata };
}

/** Metadata keys for the network spec. */
export function specMetadata(spec: NetworkSpec): Record<string, string> {
  return { format: 'pt', 'dpt.sizes': spec.sizes.join(','), 'dpt.activation': spec.activation, 'dpt.cost': spec.cost };
}

/** The network spec stored in a file's metadata, or null when the file has none (e.g. from PyTorch). */
export function specFromMetadata(metadata: Record<string, string>, source: string): NetworkSpec | null {
  const sizes = metadata['dpt.sizes'];
  if (sizes === undefined) return null;
  const spec = {
    sizes: sizes.split(',').map(Number),
    activation: metadata['dpt.activation'] as NetworkSpec['activation'],
    cost: metadata['dpt.cost'] as NetworkSpec['cost'],
  };
  if (spec.sizes.some((s) => !Number.isInteger(s) || s < 1) || !HIDDEN_ACTIVATIONS.includes(spec.activation) || !COSTS.includes(spec.cost)) {
    throw new ModelFileError(`${source}: __metadata__ describes an invalid network (${JSON.stringify(metadata)})`);
  }
  return spec;
}

/** Copies every tensor of the layout from the file into params; names and shapes must match. */
export function loadIntoParams(tensors: Map<string, SafeTensor>, layout: ParamLayout, params: Float32Array, source: string): void {
  for (const t of layout.tensors) {
    const found = tensors.get(t.name);
    if (!found) throw new ModelFileError(`${source}: no tensor ${t.name}; the file holds ${[...tensors.keys()].join(', ') || 'no tensors'} — does its network match --sizes?`);
    if (found.shape.join('x') !== t.shape.join('x')) {
      throw new ModelFileError(`${source}: tensor ${t.name} has shape [${found.shape}] but the network needs [${t.shape}]; pass --sizes matching the file`);
    }
    params.set(found.data, t.offset);
  }
}

export function saveModel(path: string, layout: ParamLayout, params: Float32Array, spec: NetworkSpec): void {
  // write then rename, so an interrupted save never leaves a half-written model behind
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, encodeSafetensors(layout, params, specMetadata(spec)));
  renameSync(tmp, path);
}

export function readModelFile(path: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ModelFileError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path`);
  }
  return decodeSafetensors(bytes, path);
}
