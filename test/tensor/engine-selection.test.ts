import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.js';
import { textReporter } from '../../cli/report.js';
import { createKernels, selectEngine } from '../../src/tensor/engines.js';
import { BLAS_INSTALL_COMMAND, loadBlas, whyNoBlas, type LoadFailure } from '../../src/tensor/kernels-blas.js';
import { blasMissing, skipNote } from '../helpers/environment.js';

/** What koffi says for each candidate on a Linux machine without OpenBLAS. */
const ABSENT = 'Failed to load shared library: cannot open shared object file: No such file or directory';
const noneInstalled: LoadFailure[] = ['libopenblas.so.0', 'libopenblas.so', 'libopenblas.dylib', 'libopenblas.dll']
  .map((path) => ({ path, stage: 'open', message: ABSENT }));
const absent = whyNoBlas(noneInstalled);

/** The kernels line of `dpt train`'s run header for these notes. */
function kernelsLine(kernels: string, kernelNotes: string[]): string[] {
  const lines: string[] = [];
  textReporter((l) => lines.push(l)).header({
    config: DEFAULTS, dataDir: '/data', trainCount: 60_000, evalCount: 10_000, kernels, kernelNotes,
    paramsSource: 'gaussian init, seed 1', parameters: 23_860, stepsPerEpoch: 5000,
  });
  return lines.filter((l) => l.trimStart().startsWith('kernels')).flatMap((l) => l.split('\n'));
}

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
    expect(notes).toEqual([`blas off: OpenBLAS is not installed; enable it with ${BLAS_INSTALL_COMMAND}`]);
  });

  it('without OpenBLAS the run header says in one short line which engine runs, why, and the command that enables blas', () => {
    const { kernels, notes } = selectEngine('auto', absent);
    const lines = kernelsLine(kernels.name, notes);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThanOrEqual(110);
    expect(lines[0]).toMatch(/^ +kernels +wasm \(blas off: OpenBLAS is not installed; enable it with apt-get install libopenblas0-pthread\)$/);
  });

  it('names the library that exists but fails, instead of the ones that are simply absent', () => {
    const wrongFile: LoadFailure = { path: 'libopenblas.so.0', stage: 'open', message: 'Failed to load shared library: invalid ELF header' };
    expect(whyNoBlas([wrongFile, ...noneInstalled.slice(1)]).message).toBe('libopenblas.so.0 did not load (Failed to load shared library: invalid ELF header)');
    const notOpenBlas: LoadFailure = { path: 'libopenblas.so.0', stage: 'symbols', message: "Cannot find function 'cblas_sgemm' in shared library" };
    expect(whyNoBlas([notOpenBlas, ...noneInstalled.slice(1)]).message).toMatch(/^libopenblas\.so\.0 is no OpenBLAS \(Cannot find function 'cblas_sgemm'/);
  });

  it('blas by name without OpenBLAS is an error that says how to install it', () => {
    expect(() => selectEngine('blas', absent)).toThrow(`--kernels blas: OpenBLAS is not installed; enable it with ${BLAS_INSTALL_COMMAND}, or use --kernels wasm`);
  });

  const missing = blasMissing();
  it.skipIf(missing !== null)(`auto picks blas where OpenBLAS loads, and names the library${skipNote(missing)}`, async () => {
    const { kernels, notes } = await createKernels('auto');
    expect(kernels.name).toBe('blas');
    expect(notes[0]).toMatch(/OpenBLAS .*1 thread/);
  });

  it.skipIf(missing === null)(`where blas does not load on this machine, the run header still says why in one line${missing === null ? ' (skipped: OpenBLAS loads here)' : ''}`, async () => {
    const { kernels, notes } = await createKernels('auto');
    const lines = kernelsLine(kernels.name, notes);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThanOrEqual(160);
  });
});
