import { describe, expect, it } from 'vitest';
import { answer, answerTable } from '../../src/profile/answer.js';
import type { BenchCell } from '../../src/profile/bench-facts.js';
import { netShape } from '../../src/profile/observe.js';
import { aggregateSeeds } from '../../src/profile/time-to-accuracy.js';

const NET = netShape([784, 30, 10]);
/** a 2-core machine whose cores were both free while the bench ran */
const IDLE = { cores: 2, load: [0.1, 1.9] as [number, number] };

/** A measured cell with only what the answer reads: the configuration, its speedup and rate, how many ranks were busy at once, its epochs. */
function cell(transport: string, workers: number, batch: number, speedup: number, o: { concurrency?: number; epochs?: [number, number][]; averageEvery?: number } = {}): BenchCell {
  return {
    transport, workers, averageEvery: o.averageEvery ?? 1, batch, net: NET, speedup, efficiency: speedup / workers, samplesPerSecond: 100_000 * speedup,
    observation: { concurrency: o.concurrency ?? (transport === 'threads' && workers > 1 ? 1.9 : 1) },
    epochs: (o.epochs ?? []).map(([accuracy, seconds], i) => ({ epoch: i + 1, accuracy, seconds })),
  } as unknown as BenchCell;
}

describe('the answer a bench leads with', () => {
  it('advises the multi-worker configuration with the largest speedup when it pays off', () => {
    const [a] = answer([
      cell('inproc', 1, 128, 1), cell('threads', 1, 128, 0.9), cell('threads', 2, 128, 1.25),
      cell('inproc', 1, 1024, 1), cell('threads', 1, 1024, 1.01), cell('threads', 2, 1024, 1.7),
    ], false, IDLE);
    expect(a!.best).toEqual({ transport: 'threads', workers: 2, averageEvery: 1, wire: 'fp32', batch: 1024 });
    expect(a!.advice).toBe('Use threads x2 at batch 1024: 1.70x single-node (170,000 samples/s).');
    expect(a!.rows.map((r) => r.paysOff)).toEqual([null, false, true, null, false, true]);
  });

  it('says to stay on one node, naming the closest configuration, when nothing pays off', () => {
    const [a] = answer([cell('inproc', 1, 1024, 1), cell('inproc', 2, 1024, 0.95), cell('threads', 1, 1024, 0.9), cell('threads', 2, 1024, 0.8)], false, IDLE);
    expect(a!.advice).toBe('Stay on one node: nothing measured beats it; the closest is threads x2 at batch 1024 (0.80x).');
    expect(a!.rows.every((r) => r.paysOff !== true)).toBe(true);
  });

  it('says when the cores were not free while it ran, since workers need cores of their own', () => {
    const cells = [cell('inproc', 1, 1024, 1), cell('threads', 2, 1024, 0.5)];
    expect(answer(cells, false, { cores: 2, load: [3.5, 4] })[0]!.advice).toBe('Stay on one node: nothing measured beats it; the closest is ' +
      'threads x2 at batch 1024 (0.50x), but other jobs held the cores while this ran (load average 3.5 on 2 cores at the start): run it again on an idle machine.');
    expect(answer(cells, false, { cores: 2, load: [0.6, 2.5] })[0]!.advice).toMatch(/\(0\.50x\)\.$/);
  });

  it('does not count a faster configuration whose ranks took turns as paying off', () => {
    const [a] = answer([cell('inproc', 1, 1024, 1), cell('inproc', 2, 1024, 1.3), cell('threads', 1, 1024, 0.9), cell('threads', 2, 1024, 0.8)], false, IDLE);
    expect(a!.rows[1]!.paysOff).toBe(false);
    expect(answerTable(a!)[2]).toEqual(['inproc x2', '1024', '130,000', '1.30x', 'no (ranks in turn)']);
    expect(a!.best).toEqual({ transport: 'threads', workers: 2, averageEvery: 1, wire: 'fp32', batch: 1024 });
    expect(a!.advice).toMatch(/^Stay on one node: nothing whose workers ran at the same time beats it; the closest is threads x2 at batch 1024/);
  });

  it('with only the in-process group, says that its workers never ran at the same time', () => {
    const [a] = answer([cell('inproc', 1, 10, 1), cell('inproc', 2, 10, 1.1)], false, IDLE);
    expect(a!.advice).toMatch(/^Stay on one node: no configuration measured ran its workers at the same time .*compare --transport threads\.$/);
  });

  it('without a multi-worker configuration, says how to measure one', () => {
    const [a] = answer([cell('inproc', 1, 10, 1), cell('threads', 1, 10, 0.5)], false, IDLE);
    expect(a!.best).toBeNull();
    expect(a!.advice).toMatch(/nothing with more than one worker was measured \(add --transport threads --workers 1,2/);
  });

  it('with --epochs, shows the time to the accuracy every configuration reached and advises the first to reach it', () => {
    const [a] = answer([
      cell('inproc', 1, 128, 1, { epochs: [[0.9, 10], [0.95, 20]] }), cell('threads', 2, 128, 1.6, { epochs: [[0.9, 6], [0.95, 12.5]] }),
      cell('inproc', 1, 1024, 1, { epochs: [[0.8, 2], [0.93, 4]] }), cell('threads', 2, 1024, 1.8, { epochs: [[0.8, 1.1], [0.93, 2.2]] }),
    ], true, IDLE);
    expect(a!.targetAccuracy).toBe(0.93);
    expect(answerTable(a!).map((r) => r[2])).toEqual(['time to 93.00%', '20.0 s', '12.5 s', '4.0 s', '2.2 s']);
    expect(a!.advice).toBe('Use threads x2 at batch 1024: 93.00% test accuracy in 2.2 s, 1.80x single-node at that batch.');
  });

  it('with --epochs, stays on one node when one node reaches the accuracy first', () => {
    const [a] = answer([
      cell('inproc', 1, 128, 1, { epochs: [[0.95, 5]] }), cell('threads', 2, 128, 0.7, { epochs: [[0.95, 7]] }),
    ], true, IDLE);
    expect(a!.advice).toBe('Stay on one node at batch 128: it reaches 95.00% test accuracy in 5.0 s; the closest with more workers is threads x2 at batch 128 (7.0 s, 0.70x single-node at that batch).');
  });

  it('names a local SGD configuration by its K in the table and by its flag in the advice, which says to check its accuracy', () => {
    const [a] = answer([
      cell('inproc', 1, 1024, 1), cell('threads', 2, 1024, 1.5), cell('threads', 2, 1024, 1.9, { averageEvery: 16 }),
    ], false, IDLE);
    expect(answerTable(a!).map((r) => r[0])).toEqual(['config', 'inproc x1', 'threads x2', 'threads x2 K=16']);
    expect(a!.rows.map((r) => r.averageEvery)).toEqual([1, 1, 16]);
    expect(a!.best).toEqual({ transport: 'threads', workers: 2, averageEvery: 16, wire: 'fp32', batch: 1024 });
    expect(a!.advice).toBe('Use threads x2 at batch 1024, --average-every 16: 1.90x single-node (190,000 samples/s); '
      + 'averaging every 16 steps trains differently, so check its time to accuracy with --target-accuracy.');
  });

  it('answers each net on its own', () => {
    const big = netShape([784, 256, 256, 10]);
    const cells = [cell('inproc', 1, 1024, 1), cell('threads', 2, 1024, 0.8),
      { ...cell('inproc', 1, 1024, 1), net: big }, { ...cell('threads', 2, 1024, 1.8), net: big }];
    expect(answer(cells, false, IDLE).map((a) => [a.net, a.advice.split(':')[0]])).toEqual([['784-30-10', 'Stay on one node'], ['784-256-256-10', 'Use threads x2 at batch 1024']]);
  });
});

describe('the answer to --target-accuracy over seeds', () => {
  const seeds = (target: number, times: (number | null)[]) => aggregateSeeds(target, 40, times.map((s, i) => ({ seed: i + 1, seconds: s, epochs: s === null ? null : 3 })));
  const withSeeds = (c: BenchCell, times: (number | null)[]): BenchCell => ({ ...c, timeToAccuracy: seeds(0.95, times) });

  it('ranks by the mean time to the target and names the ratio against one node', () => {
    // one node: drop 5.0 and 5.8 -> 5.4; threads x2: drop 2.9 and 3.5 -> (3.1 + 3.0 + 3.2) / 3 = 3.1
    const [a] = answer([
      withSeeds(cell('inproc', 1, 1024, 1), [5.2, 5.0, 5.4, 5.6, 5.8]),
      withSeeds(cell('threads', 2, 1024, 1.6), [3.1, 2.9, 3.0, 3.2, 3.5]),
    ], false, IDLE);
    expect(a!.targetAccuracy).toBe(0.95);
    expect(a!.rows.map((r) => r.secondsToAccuracy)).toEqual([expect.closeTo(5.4, 9), expect.closeTo(3.1, 9)]);
    expect(a!.advice).toBe('Use threads x2: 95.0% in 3.1 s against 5.4 s on one node (1.74x).');
    expect(answerTable(a!)[0]).toEqual(['config', 'batch', 'time to 95.0%', 'vs one node', 'missed', 'pays off']);
    expect(answerTable(a!)[2]).toEqual(['threads x2', '1024', '3.1 s', '1.74x', '0 of 5', 'yes']);
  });

  it('names a local SGD configuration by its flag when it reaches the target first', () => {
    const [a] = answer([
      withSeeds(cell('inproc', 1, 1024, 1), [5.2, 5.0, 5.4, 5.6, 5.8]),
      withSeeds(cell('threads', 2, 1024, 1.6), [4.1, 3.9, 4.0, 4.2, 4.5]),
      withSeeds(cell('threads', 2, 1024, 1.9, { averageEvery: 16 }), [3.1, 2.9, 3.0, 3.2, 3.5]),
    ], false, IDLE);
    expect(a!.advice).toBe('Use threads x2, --average-every 16: 95.0% in 3.1 s against 5.4 s on one node (1.74x).');
    expect(answerTable(a!)[3]).toEqual(['threads x2 K=16', '1024', '3.1 s', '1.74x', '0 of 5', 'yes']);
    expect(a!.best!.averageEvery).toBe(16);
  });

  it('advises no configuration that misses the target on more seeds than one node, and names it as quicker but unreliable', () => {
    // one node misses 1 of 5: drop 5.0 and 5.6 -> 5.3; K=64 misses 2 of 5: drop 3.3 and 3.5 -> 3.4; K=16 misses none: 4.1
    const [a] = answer([
      withSeeds(cell('inproc', 1, 10, 1), [5.2, 5.0, null, 5.4, 5.6]),
      withSeeds(cell('threads', 2, 10, 1.4, { averageEvery: 16 }), [4.1, 3.9, 4.0, 4.2, 4.5]),
      withSeeds(cell('threads', 2, 10, 1.7, { averageEvery: 64 }), [3.3, null, 3.4, null, 3.5]),
    ], false, IDLE);
    expect(a!.advice).toBe('Use threads x2, --average-every 16: 95.0% in 4.1 s against 5.3 s on one node (1.29x); '
      + 'threads x2, --average-every 64 was quicker (3.4 s) but missed 95.0% in 2 of 5 seeds, one node in 1.');
    expect(a!.best!.averageEvery).toBe(16);
  });

  it('counts a configuration only if it reached the target in some seed, and shows its misses', () => {
    const [a] = answer([
      withSeeds(cell('inproc', 1, 1024, 1), [5.0, null, 5.2]),
      withSeeds(cell('threads', 2, 1024, 1.6), [null, null, null]),
    ], false, IDLE);
    expect(a!.rows.map((r) => [r.secondsToAccuracy, r.misses])).toEqual([[5.1, 1], [null, 3]]);
    expect(a!.advice).toBe('Stay on one node: 95.0% in 5.1 s; nothing with more than one worker reached 95.0% in any seed.');
    expect(answerTable(a!)[2]).toEqual(['threads x2', '1024', 'never', '–', '3 of 3', 'no']);
  });
});
