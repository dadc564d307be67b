/**
 * What this machine lacks for a test, as a one-line skip reason (null: nothing missing). Tests
 * that need OpenBLAS or Chromium pass it to `skipIf` and put it in their name, so vitest counts
 * them as skipped and says why instead of the test quietly doing less. CI (.ci/run) installs both.
 */
import { findChromium } from '../../bench/report-screenshot.js';
import { BLAS_INSTALL_HINT, loadBlas } from '../../src/tensor/kernels-blas.js';

/** Why the blas engine cannot load here, e.g. "no OpenBLAS library found; install OpenBLAS (...)". */
export function blasMissing(): string | null {
  const lib = loadBlas();
  if (!(lib instanceof Error)) return null;
  // the message's head names what is missing; its parenthesis lists every path tried
  return `${lib.message.split(' (')[0]}; ${BLAS_INSTALL_HINT}`;
}

/** Why a headless Chromium cannot run here. */
export function chromiumMissing(): string | null {
  return findChromium() === null ? 'no chromium on PATH; apt-get install chromium' : null;
}

/** " (skipped: REASON)" for a test's name where something is missing, else nothing. */
export function skipNote(missing: string | null): string {
  return missing === null ? '' : ` (skipped: ${missing})`;
}
