/**
 * The pure helpers of local SGD (src/optim/local-sgd.ts) against plain references written here:
 * examples per round and per rank, a rank's indices gathered from a round's batches, the averaged
 * delta and the weighted average of the ranks' velocities.
 */
import { describe, expect, it } from 'vitest';
import { shardRange } from '../../src/data/batches.js';
import { applyAveragedDelta, gatherRankIndices, rankExamples, roundExamples, weightedAverage } from '../../src/optim/local-sgd.js';

/** Rank r's shard of each batch, concatenated: the plain way. */
function referenceShards(indices: number[], batches: number[], rank: number, world: number): number[] {
  const out: number[] = [];
  let offset = 0;
  for (const b of batches) {
    const batch = indices.slice(offset, offset + b);
    const [s, e] = shardRange(b, rank, world);
    out.push(...batch.slice(s, e));
    offset += b;
  }
  return out;
}

describe('local SGD helpers', () => {
  // a round that ends an epoch on a short batch, and a batch smaller than the world
  const batches = [10, 10, 7, 2];
  const indices = Array.from({ length: 29 }, (_, i) => 1000 + 3 * i);

  it('count a round\'s examples, and each rank\'s, so that the ranks\' add up to the round\'s', () => {
    expect(roundExamples({ batches })).toBe(29);
    expect(roundExamples({ batches: [] })).toBe(0);
    for (const world of [1, 2, 3]) {
      const perRank = Array.from({ length: world }, (_, r) => rankExamples(batches, r, world));
      for (let r = 0; r < world; r++) expect(perRank[r], `rank ${r} of ${world}`).toBe(referenceShards(indices, batches, r, world).length);
      expect(perRank.reduce((a, n) => a + n, 0)).toBe(29);
    }
  });

  it('gather a rank\'s shard of every batch of the round, in order, as the plain reference does', () => {
    for (const world of [1, 2, 3]) {
      for (let r = 0; r < world; r++) {
        const out = new Uint32Array(40).fill(7);
        const got = gatherRankIndices(out, Uint32Array.from(indices), batches, r, world);
        expect([...got], `rank ${r} of ${world}`).toEqual(referenceShards(indices, batches, r, world));
        expect(got.buffer).toBe(out.buffer);
        // nothing beyond the rank's own examples is written
        expect([...out.subarray(got.length)].every((v) => v === 7)).toBe(true);
      }
    }
  });

  it('move the parameters by the summed weighted deltas divided by the examples, and refuse no examples', () => {
    const params = Float32Array.from([1, -2, 0.5]);
    applyAveragedDelta(params, Float32Array.from([4, 8, -2]), 4);
    expect([...params]).toEqual([0, -4, 1]);
    for (const bad of [0, -3, NaN]) expect(() => applyAveragedDelta(params, new Float32Array(3), bad), String(bad)).toThrow(/at least one example, got/);
  });

  it('average the velocities weighted by examples, skip ranks that saw none (whatever they hold), and refuse no weight', () => {
    const out = new Float32Array(2).fill(99);
    weightedAverage(out, [Float32Array.from([1, 2]), Float32Array.from([NaN, Infinity]), Float32Array.from([4, -1])], [1, 0, 3]);
    expect(out[0]).toBeCloseTo((1 * 1 + 3 * 4) / 4, 6);
    expect(out[1]).toBeCloseTo((1 * 2 + 3 * -1) / 4, 6);
    for (const bad of [[0, 0], [-1, 1]]) expect(() => weightedAverage(out, [new Float32Array(2), new Float32Array(2)], bad), String(bad)).toThrow(/positive total weight, got/);
  });
});
