/**
 * Timing for benchmarks on a shared, noisy machine: each repetition runs the function enough
 * times to last at least `minMs`, and the median over repetitions is reported (with min and
 * max, so the spread is visible). Uses only performance.now().
 */
import { median } from '../src/profile/stats.js';

export interface Timing {
  /** median seconds per call */
  median: number;
  min: number;
  max: number;
  reps: number;
}

/** One function timed alone: timeInterleaved with nothing to take turns with. */
export function timeCalls(fn: () => void, opts: { reps?: number; minMs?: number } = {}): Timing {
  return timeInterleaved([fn], opts)[0]!;
}

/**
 * Times several functions against each other: each is calibrated to at least `minMs` per
 * repetition, then the repetitions alternate between them (A, B, C, A, B, C, ...), so a load
 * change on the shared machine hits all of them alike and their ratio stays meaningful.
 */
export function timeInterleaved(fns: (() => void)[], { reps = 5, minMs = 40 }: { reps?: number; minMs?: number } = {}): Timing[] {
  const inner = fns.map((fn) => {
    let n = 1;
    for (;;) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) fn();
      const ms = performance.now() - t0;
      if (ms >= minMs || n >= 1 << 20) return n;
      n = ms <= 0 ? n * 10 : Math.min(n * 10, Math.ceil(n * (minMs * 1.2) / ms));
    }
  });
  const samples: number[][] = fns.map(() => []);
  for (let r = 0; r < reps; r++) {
    fns.forEach((fn, f) => {
      const t0 = performance.now();
      for (let i = 0; i < inner[f]!; i++) fn();
      samples[f]!.push((performance.now() - t0) / 1000 / inner[f]!);
    });
  }
  return samples.map((s) => ({ median: median(s), min: Math.min(...s), max: Math.max(...s), reps }));
}
