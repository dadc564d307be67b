/**
 * Time to accuracy over several seeds, scored the MLPerf way: per configuration, the seeds that
 * reached the target are sorted by time, the fastest and the slowest are dropped (when at least
 * three reached it) and the rest averaged; a seed that never reached it is a miss, counted and
 * reported, never averaged as a time. Pure: the runs are measured elsewhere (cli/bench.ts).
 */
import { fmtPct } from './format.js';

/** One seed of one configuration: null seconds and epochs when it missed the target. */
export interface SeedRun {
  seed: number;
  seconds: number | null;
  /** the epoch whose evaluation first reached the target */
  epochs: number | null;
}

export interface TimeToAccuracy {
  target: number;
  maxEpochs: number;
  seeds: SeedRun[];
  /** mean seconds over the averaged seeds; null when no seed reached the target */
  meanSeconds: number | null;
  /** the seeds the mean is over, and the fastest and slowest left out of it */
  averaged: number[];
  dropped: number[];
  misses: number;
}

/** With this many seeds at the target, the fastest and the slowest are dropped (MLPerf's rule). */
export const DROP_FROM = 3;

export function aggregateSeeds(target: number, maxEpochs: number, seeds: SeedRun[]): TimeToAccuracy {
  // stable sort: of two equal times, the earlier seed counts as the faster
  const reached = seeds.filter((s) => s.seconds !== null).sort((a, b) => a.seconds! - b.seconds!);
  const kept = reached.length >= DROP_FROM ? reached.slice(1, -1) : reached;
  const dropped = reached.length >= DROP_FROM ? [reached[0]!.seed, reached.at(-1)!.seed] : [];
  return {
    target, maxEpochs, seeds,
    meanSeconds: kept.length === 0 ? null : kept.reduce((a, s) => a + s.seconds!, 0) / kept.length,
    averaged: kept.map((s) => s.seed), dropped, misses: seeds.length - reached.length,
  };
}

/**
 * Epochs to the target over the seeds the mean time is over (the same MLPerf selection): what a
 * what-if multiplies its predicted epoch time by. Null when no seed reached the target.
 */
export function meanEpochs(t: TimeToAccuracy): number | null {
  const kept = t.seeds.filter((s) => t.averaged.includes(s.seed) && s.epochs !== null);
  return kept.length === 0 ? null : kept.reduce((a, s) => a + s.epochs!, 0) / kept.length;
}

/** "2 of 5 seeds missed 95% within 40 epochs", or null when none did. */
export function missNote(t: TimeToAccuracy): string | null {
  if (t.misses === 0) return null;
  return `${t.misses} of ${t.seeds.length} seed${t.seeds.length === 1 ? '' : 's'} missed ${fmtPct(t.target, 1)} within ${t.maxEpochs} epochs`;
}

/** How the mean was taken, in words: which seeds were dropped, or why none were. */
export function meanNote(t: TimeToAccuracy): string {
  if (t.meanSeconds === null) return `no seed reached ${fmtPct(t.target, 1)}`;
  if (t.dropped.length > 0) return `mean of ${t.averaged.length} seed${t.averaged.length === 1 ? '' : 's'}, fastest and slowest dropped`;
  return `mean of the ${t.averaged.length} seed${t.averaged.length === 1 ? '' : 's'} that reached it (fewer than ${DROP_FROM}: none dropped)`;
}
