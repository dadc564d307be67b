/**
 * Choosing a kernel engine. `auto` picks the fastest one that loads on this machine; an engine
 * that cannot load is reported with the reason and never fails the run unless it was asked for
 * by name.
 */
import type { KernelChoice } from '../config.js';
import type { Kernels } from './kernels.js';
import { createJsKernels } from './kernels-js.js';

export interface EngineSelection {
  kernels: Kernels;
  /** why this engine, and what was unavailable */
  notes: string[];
}

export async function createKernels(choice: KernelChoice): Promise<EngineSelection> {
  switch (choice) {
    case 'js':
    case 'auto':
      return { kernels: createJsKernels(), notes: [] };
    default:
      throw new Error(`--kernels ${choice} is not available in this build; use --kernels js`);
  }
}
