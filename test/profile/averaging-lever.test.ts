import { describe, expect, it } from 'vitest';
import type { BenchCell } from '../../src/profile/bench-facts.js';
import { netShape } from '../../src/profile/observe.js';
import { averagingLever } from '../../src/profile/verdict.js';

const NET = netShape([784, 256, 256, 10]);
/** A cell with what the lever reads: its configuration and its mean step split into compute, communication and waiting. */
function cell(transport: string, workers: number, averageEvery: number, split: { compute: number; communication: number; wait: number }): BenchCell {
  const meanMs = split.compute + split.communication + split.wait;
  return { transport, workers, averageEvery, batch: 256, net: NET, summary: { step: { meanMs }, groups: { load: 0, update: 0, ...split } } } as unknown as BenchCell;
}

describe('the verdict\'s lever of averaging less often', () => {
  const base = cell('inproc', 1, 1, { compute: 8.5, communication: 0, wait: 0 });

  it('names the K at which the step would undercut one node\'s, from the measured split', () => {
    // 23.8 ms: 2.6 compute, 14.5 communication, 6.7 waiting, every 32 steps; one node 8.5 ms.
    // target 8.5 / 1.05 = 8.095; 32 × 21.2 / (8.095 − 2.6) = 123.46 → 124
    const c = cell('ws', 4, 32, { compute: 2.6, communication: 14.5, wait: 6.7 });
    expect(averagingLever({ cells: [base, c] }, c)).toMatch(/^averaging less often \(--average-every 124 or more instead of 32: ws x4 K=32 spends 21\.2 ms per step exchanging and waiting/);
  });

  it('says averaging less often alone will not do where the rest of the step is already longer than one node\'s', () => {
    const c = cell('ws', 4, 8, { compute: 9, communication: 10, wait: 1 });
    expect(averagingLever({ cells: [base, c] }, c)).toMatch(/^not averaging less often alone: without its exchange ws x4 K=8's step \(9\.00 ms\) is still longer/);
  });

  it('stays silent where the exchange is a small part of the step, or for one worker', () => {
    const c = cell('threads', 2, 1, { compute: 4, communication: 0.5, wait: 0.2 });
    expect(averagingLever({ cells: [base, c] }, c)).toBeNull();
    expect(averagingLever({ cells: [base] }, base)).toBeNull();
  });
});
