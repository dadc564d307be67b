import { describe, expect, it } from 'vitest';
import { probePoints } from '../../bench/harness/probes.js';

describe('the points dpt bench probes', () => {
  it('probes one rank alone at every shard, and the ranks a machine runs at once at each worker count\'s shard', () => {
    // batches 128 and 1024, 1, 2 and 8 workers, 2 cores: shards 128, 64, 16, 1024, 512, 128
    expect(probePoints([128, 1024], [1, 2, 8], [2])).toEqual([
      { shard: 16, ranks: 1 }, { shard: 64, ranks: 1 }, { shard: 128, ranks: 1 }, { shard: 512, ranks: 1 }, { shard: 1024, ranks: 1 },
      { shard: 16, ranks: 2 }, { shard: 64, ranks: 2 }, { shard: 128, ranks: 2 }, { shard: 512, ranks: 2 },
    ]);
  });

  it('rounds shards up and adds the ranks a smaller what-if machine runs at once', () => {
    // 100 / 3 → 34; on 4 cores 3 ranks at once, on a what-if of 2 cores 2
    expect(probePoints([100], [3], [4, 2])).toEqual([{ shard: 34, ranks: 1 }, { shard: 34, ranks: 2 }, { shard: 34, ranks: 3 }]);
  });
});
