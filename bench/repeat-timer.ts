/**
 * Timing for benchmarks on a shared, noisy machine: each repetition runs the function enough
 * times to last at least `minMs`, and the median over repetitions is reported (with min and
 * max, so the spread is visible). Uses only performance.now().
 */

export interface Timing {
  /** median seconds per call */
  median: number;
  min: number;
  max: number;
  reps: number;
}

export function timeCalls(fn: () => void, { reps = 5, minMs = 40 }: { reps?: number; minMs?: number } = {}): Timing {
  // calibrate: how many calls make one repetition of at least minMs
  let inner = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) fn();
    const ms = performance.now() - t0;
    if (ms >= minMs || inner >= 1 << 20) break;
    inner = ms <= 0 ? inner * 10 : Math.min(inner * 10, Math.ceil(inner * (minMs * 1.2) / ms));
  }
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) fn();
    samples.push((performance.now() - t0) / 1000 / inner);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)]!, min: samples[0]!, max: samples[samples.length - 1]!, reps };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
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
  return samples.map((s) => {
    s.sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]!, reps };
  });
}
