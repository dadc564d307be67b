/**
 * Choosing a kernel engine. `auto` picks the fastest one that loads on this machine (blas, then
 * wasm, then js); an engine that cannot load is reported with the reason in the run header and
 * never fails the run unless it was asked for by name.
 */
import { ConfigError, type KernelChoice } from '../config.js';
import type { Kernels } from './kernels.js';
import { createJsKernels } from './kernels-js.js';
import { createWasmKernels } from './kernels-wasm.js';
import { BlasUnavailable, createBlasKernels, loadBlas, type BlasLibrary } from './kernels-blas.js';

export interface EngineSelection {
  kernels: Kernels;
  /** why this engine, and what was unavailable */
  notes: string[];
}

export async function createKernels(choice: KernelChoice): Promise<EngineSelection> {
  return selectEngine(choice, choice === 'js' || choice === 'wasm' ? null : loadBlas());
}

const NOT_LOADED = new BlasUnavailable('OpenBLAS was not loaded', null);

/** The choice given what loading OpenBLAS gave (null: not tried); separate so tests can pass an absent library. */
export function selectEngine(choice: KernelChoice, lib: BlasLibrary | BlasUnavailable | null): EngineSelection {
  switch (choice) {
    case 'js':
      return { kernels: createJsKernels(), notes: [] };
    case 'wasm':
      return { kernels: createWasmKernels(), notes: [] };
    case 'blas': {
      if (lib === null || lib instanceof Error) {
        const why = lib ?? NOT_LOADED;
        throw new ConfigError(`--kernels blas: ${why.message}; ${why.fix ? `enable it with ${why.fix}, ` : ''}or use --kernels wasm`);
      }
      return { kernels: createBlasKernels(lib), notes: [lib.description] };
    }
    case 'auto': {
      if (lib !== null && !(lib instanceof Error)) return { kernels: createBlasKernels(lib), notes: [lib.description] };
      // one short line in the run header: why blas is off and the command that turns it on
      const why = lib ?? NOT_LOADED;
      const notes = [`blas off: ${why.message}${why.fix ? `; enable it with ${why.fix}` : ''}`];
      try {
        return { kernels: createWasmKernels(), notes };
      } catch (e) {
        notes.push(`wasm unavailable (${(e as Error).message}); using the plain js kernels`);
        return { kernels: createJsKernels(), notes };
      }
    }
  }
}
