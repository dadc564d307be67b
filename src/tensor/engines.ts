/**
 * Choosing a kernel engine. `auto` picks the fastest one that loads on this machine (blas, then
 * wasm, then js); an engine that cannot load is reported with the reason in the run header and
 * never fails the run unless it was asked for by name.
 */
import { ConfigError, type KernelChoice } from '../config.js';
import type { Kernels } from './kernels.js';
import { createJsKernels } from './kernels-js.js';
import { createWasmKernels } from './kernels-wasm.js';
import { BLAS_INSTALL_HINT, createBlasKernels, loadBlas, type BlasLibrary } from './kernels-blas.js';

export interface EngineSelection {
  kernels: Kernels;
  /** why this engine, and what was unavailable */
  notes: string[];
}

export async function createKernels(choice: KernelChoice): Promise<EngineSelection> {
  return selectEngine(choice, choice === 'js' || choice === 'wasm' ? null : loadBlas());
}

/** The choice given what loading OpenBLAS gave (null: not tried); separate so tests can pass an absent library. */
export function selectEngine(choice: KernelChoice, lib: BlasLibrary | Error | null): EngineSelection {
  switch (choice) {
    case 'js':
      return { kernels: createJsKernels(), notes: [] };
    case 'wasm':
      return { kernels: createWasmKernels(), notes: [] };
    case 'blas': {
      if (lib === null || lib instanceof Error) {
        throw new ConfigError(`--kernels blas: ${lib?.message ?? 'OpenBLAS was not loaded'}; ${BLAS_INSTALL_HINT}, or use --kernels wasm`);
      }
      return { kernels: createBlasKernels(lib), notes: [lib.description] };
    }
    case 'auto': {
      if (lib !== null && !(lib instanceof Error)) return { kernels: createBlasKernels(lib), notes: [lib.description] };
      const notes = [`blas unavailable (${lib?.message ?? 'not tried'}); using wasm — to enable it, ${BLAS_INSTALL_HINT}`];
      try {
        return { kernels: createWasmKernels(), notes };
      } catch (e) {
        notes.push(`wasm unavailable (${(e as Error).message}); using the plain js kernels`);
        return { kernels: createJsKernels(), notes };
      }
    }
  }
}
