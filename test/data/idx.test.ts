import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DataError, parseIdx, readIdxFile, readImagesAndLabels } from '../../src/data/idx.js';
import { idxBytes, tempDir, tinySet } from '../helpers/idx-fixtures.js';

describe('IDX parser', () => {
  it('reads dimensions big-endian and returns the data bytes', () => {
    const parsed = parseIdx(tinySet().images, 'x');
    expect(parsed.dims).toEqual([3, 2, 2]);
    expect(Array.from(parsed.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('reads dimensions above 255 correctly (big-endian, not little)', () => {
    const parsed = parseIdx(idxBytes(0x801, [300], new Array(300).fill(1)), 'x');
    expect(parsed.dims).toEqual([300]);
  });

  it('rejects a bad magic number and names the file', () => {
    const bytes = idxBytes(0x0d03, [1], [0]);
    expect(() => parseIdx(bytes, 'weird.idx')).toThrow(/weird\.idx: bad magic 0x00000d03/);
  });

  it('rejects an image file given where labels were expected', () => {
    expect(() => parseIdx(tinySet().images, 'labels-file', 0x801)).toThrow(/labels-file: magic 0x00000803 where 0x00000801 was expected.*swapped/);
  });

  it('rejects a file truncated inside the header', () => {
    expect(() => parseIdx(new Uint8Array([0, 0, 8]), 'short')).toThrow(/short: only 3 bytes.*truncated/);
    expect(() => parseIdx(tinySet().images.subarray(0, 10), 'cut')).toThrow(/cut: header declares 3 dimensions.*truncated/);
  });

  it('rejects a file whose data is shorter or longer than its header says', () => {
    const full = tinySet().images;
    expect(() => parseIdx(full.subarray(0, full.length - 1), 'a')).toThrow(/a: header says 3x2x2 = 12 bytes of data but the file holds 11; the file is truncated/);
    const longer = new Uint8Array(full.length + 2);
    longer.set(full);
    expect(() => parseIdx(longer, 'b')).toThrow(/holds 14; the file is longer than its header says/);
  });

  it('reads gzipped files transparently', () => {
    const dir = tempDir();
    const path = join(dir, 'images.gz');
    writeFileSync(path, gzipSync(tinySet().images));
    expect(readIdxFile(path).dims).toEqual([3, 2, 2]);
  });

  it('names the file when gzip data is corrupt', () => {
    const dir = tempDir();
    const path = join(dir, 'broken.gz');
    const gz = gzipSync(tinySet().images);
    writeFileSync(path, gz.subarray(0, gz.length - 6));
    expect(() => readIdxFile(path)).toThrow(DataError);
    expect(() => readIdxFile(path)).toThrow(/broken\.gz: gzip data is corrupt/);
  });

  it('names a missing file and suggests --data-dir', () => {
    expect(() => readIdxFile('/nonexistent/file')).toThrow(/\/nonexistent\/file: cannot read \(ENOENT\); pass --data-dir DIR/);
  });
});

describe('image and label files together', () => {
  function write(images: Uint8Array, labels: Uint8Array): [string, string] {
    const dir = tempDir();
    writeFileSync(join(dir, 'i'), images);
    writeFileSync(join(dir, 'l'), labels);
    return [join(dir, 'i'), join(dir, 'l')];
  }

  it('loads matching files', () => {
    const { images, labels } = tinySet();
    const set = readImagesAndLabels(...write(images, labels));
    expect(set.count).toBe(3);
    expect([set.rows, set.cols]).toEqual([2, 2]);
    expect(Array.from(set.labels)).toEqual([0, 1, 2]);
  });

  it('rejects image and label counts that differ', () => {
    const { images } = tinySet();
    const [i, l] = write(images, idxBytes(0x801, [2], [0, 1]));
    expect(() => readImagesAndLabels(i, l)).toThrow(/holds 3 images but .* holds 2 labels/);
  });

  it('rejects a label of 10', () => {
    const { images } = tinySet();
    const [i, l] = write(images, idxBytes(0x801, [3], [0, 10, 2]));
    expect(() => readImagesAndLabels(i, l)).toThrow(/label 10 at index 1 is not a digit 0-9/);
  });

  it('rejects an image file with the wrong number of dimensions', () => {
    const [i, l] = write(idxBytes(0x802, [3, 4], new Array(12).fill(0)), idxBytes(0x801, [3], [0, 1, 2]));
    expect(() => readImagesAndLabels(i, l)).toThrow(/magic 0x00000802 where 0x00000803 was expected/);
  });
});
