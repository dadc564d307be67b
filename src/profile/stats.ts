/** Small order statistics for the summaries (nearest-rank percentiles, means). */

/** The p-th percentile (0..100) by nearest rank; NaN for no values. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const n = values.length;
  if (n === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sorted[rank - 1]!;
}

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

/**
 * The 50th percentile by nearest rank: the middle value, and for an even count the lower of the two
 * middle ones (a value that was measured, not a mean of two). NaN for no values.
 */
export const median = (values: ArrayLike<number>): number => percentile(values, 50);
