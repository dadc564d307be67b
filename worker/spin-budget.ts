/**
 * How long a thread that has finished its shard polls for the next step before it sleeps: a few
 * times the gap it has been seeing between finishing one step and the next one arriving (the
 * median of the last GAPS gaps, so one long pause — an evaluation, another configuration's turn
 * in a benchmark — neither stretches the polling nor is polled through), never more than the
 * group's cap. A thread that polls long past the usual gap only takes a core from someone else.
 */
import { median } from '../src/profile/stats.js';

export const GAPS = 8;
/** poll up to this many times the usual gap */
export const GAP_FACTOR = 4;

export class SpinBudget {
  private readonly gaps = new Float64Array(GAPS);
  private count = 0;

  /** capMs: the most a thread ever polls (0: never) */
  constructor(private readonly capMs: number) {}

  /** Records the gap between finishing a step and the next one arriving. */
  record(gapMs: number): void {
    this.gaps[this.count % GAPS] = gapMs;
    this.count++;
  }

  /** Milliseconds to poll now: the cap until a gap has been seen, then GAP_FACTOR × the median gap, capped. */
  get ms(): number {
    if (this.capMs <= 0) return 0;
    const n = Math.min(this.count, GAPS);
    if (n === 0) return this.capMs;
    return Math.min(this.capMs, GAP_FACTOR * median(this.gaps.subarray(0, n)));
  }
}
