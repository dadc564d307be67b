/** Tiny IDX files built in memory, for the parser's tests. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export function idxBytes(magic: number, dims: number[], data: ArrayLike<number>): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(Array.from(data), header.length);
  return out;
}

/** Three 2x2 images with labels 0, 1, 2. */
export function tinySet(): { images: Uint8Array; labels: Uint8Array } {
  return {
    images: idxBytes(0x803, [3, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    labels: idxBytes(0x801, [3], [0, 1, 2]),
  };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'dpt-test-'));
}

/** Writes the four MNIST file names into a fresh folder (optionally gzipped). */
export function writeMnistDir(files: { trainImages: Uint8Array; trainLabels: Uint8Array; testImages: Uint8Array; testLabels: Uint8Array }, gz = false): string {
  const dir = tempDir();
  const put = (name: string, bytes: Uint8Array) => writeFileSync(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(bytes) : bytes);
  put('train-images-idx3-ubyte', files.trainImages);
  put('train-labels-idx1-ubyte', files.trainLabels);
  put('t10k-images-idx3-ubyte', files.testImages);
  put('t10k-labels-idx1-ubyte', files.testLabels);
  return dir;
}
