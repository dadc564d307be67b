/**
 * The IDX file format of MNIST (LeCun): a 4-byte magic 0x000008TD where T = 0x08 means unsigned
 * bytes and D the number of dimensions, then D big-endian uint32 sizes, then the data. We accept
 * unsigned-byte files only (every MNIST file is one); gzip is detected from its magic bytes.
 * Every failure names the file and says what to do.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

export class DataError extends Error {
  override readonly name = 'DataError';
}

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parses IDX bytes (already gunzipped). `source` names the file in errors. */
export function parseIdx(bytes: Uint8Array, source: string, expectedMagic?: number): IdxArray {
  if (bytes.length < 4) throw new DataError(`${source}: only ${bytes.length} bytes, too short for an IDX header; the file is truncated — download it again`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if ((magic & 0xffff0000) !== 0 || ((magic >> 8) & 0xff) !== 0x08) {
    throw new DataError(`${source}: bad magic 0x${magic.toString(16).padStart(8, '0')}, not an unsigned-byte IDX file (expected 0x00000803 for images or 0x00000801 for labels); is this an MNIST file?`);
  }
  if (expectedMagic !== undefined && magic !== expectedMagic) {
    throw new DataError(`${source}: magic 0x${magic.toString(16).padStart(8, '0')} where 0x${expectedMagic.toString(16).padStart(8, '0')} was expected (${expectedMagic === IDX_IMAGES_MAGIC ? 'an image file' : 'a label file'}); were the image and label files swapped?`);
  }
  const nDims = magic & 0xff;
  const headerLength = 4 + 4 * nDims;
  if (bytes.length < headerLength) throw new DataError(`${source}: header declares ${nDims} dimensions but the file has only ${bytes.length} bytes; the file is truncated — download it again`);
  const dims: number[] = [];
  for (let i = 0; i < nDims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerLength;
  if (actual !== expected) {
    throw new DataError(`${source}: header says ${dims.join('x')} = ${expected} bytes of data but the file holds ${actual}; the file is ${actual < expected ? 'truncated' : 'longer than its header says'} — download it again`);
  }
  return { dims, data: bytes.subarray(headerLength) };
}

/** Reads an IDX file, gunzipping it when its first bytes are the gzip magic 1f 8b. */
export function readIdxFile(path: string, expectedMagic?: number): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass --data-dir DIR with the four MNIST files`);
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new DataError(`${path}: gzip data is corrupt (${(e as Error).message}); download the file again or gunzip it by hand to check`);
    }
  }
  return parseIdx(bytes, path, expectedMagic);
}

export interface LabelledImages {
  /** count × rows × cols bytes, row-major, 0 = background */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** Reads an image file and its label file and checks that they belong together. */
export function readImagesAndLabels(imagesPath: string, labelsPath: string, classes = 10): LabelledImages {
  const img = readIdxFile(imagesPath, IDX_IMAGES_MAGIC);
  const lab = readIdxFile(labelsPath, IDX_LABELS_MAGIC);
  if (img.dims.length !== 3) throw new DataError(`${imagesPath}: image files have 3 dimensions (count, rows, cols), this one has ${img.dims.length}`);
  if (lab.dims.length !== 1) throw new DataError(`${labelsPath}: label files have 1 dimension, this one has ${lab.dims.length}`);
  const [count, rows, cols] = img.dims as [number, number, number];
  if (lab.dims[0] !== count) {
    throw new DataError(`${imagesPath} holds ${count} images but ${labelsPath} holds ${lab.dims[0]} labels; the two files must come from the same set`);
  }
  for (let i = 0; i < lab.data.length; i++) {
    if (lab.data[i]! >= classes) {
      throw new DataError(`${labelsPath}: label ${lab.data[i]} at index ${i} is not a digit 0-${classes - 1}; the file is corrupt — download it again`);
    }
  }
  return { images: img.data, labels: lab.data, count, rows, cols };
}
