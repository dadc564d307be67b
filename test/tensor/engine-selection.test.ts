import { describe, expect, it } from 'vitest';
import { createKernels, selectEngine } from '../../src/tensor/engines.js';
import { blasMissing, skipNote } from '../helpers/environment.js';

const absent = new Error('no OpenBLAS library found (libopenblas.so.0: cannot open shared object file)');

describe('--kernels', () => {
  it('js and wasm are always available and say nothing', async () => {
    for (const choice of ['js', 'wasm'] as const) {
      const { kernels, notes } = await createKernels(choice);
      expect(kernels.name).toBe(choice);
      expect(notes).toEqual([]);
    }
  });

  it('auto without OpenBLAS falls back to wasm with a note that says how to enable blas', () => {
    const { kernels, notes } = selectEngine('auto', absent);
    expect(kernels.name).toBe('wasm');
    expect(notes.join(' ')).toMatch(/blas unavailable \(no OpenBLAS library found.*apt-get install libopenblas0/);
  });

  it('blas by name without OpenBLAS is an error that says how to install it', () => {
    expect(() => selectEngine('blas', absent)).toThrow(/--kernels blas: no OpenBLAS library found.*apt-get install libopenblas0.*or use --kernels wasm/);
  });

  const missing = blasMissing();
  it.skipIf(missing !== null)(`auto picks blas where OpenBLAS loads, and names the library${skipNote(missing)}`, async () => {
    const { kernels, notes } = await createKernels('auto');
    expect(kernels.name).toBe('blas');
    expect(notes[0]).toMatch(/OpenBLAS .*1 thread/);
  });
});
