import { describe, expect, it } from 'vitest';
import { stepsInTurns, takeTurns } from '../../bench/harness/side-by-side.js';

describe('side-by-side turns', () => {
  it('runs the configurations in turns of the block, every turn after the first with one uncounted step back', async () => {
    const configurations = [{ name: 'a' }, { name: 'b' }];
    const seen: string[] = [];
    const trained = await takeTurns(configurations, 5, 2, async (l, s, index) => { seen.push(`${l.name}${s}:${index}`); });
    // counted 0-1, then (step back) 2-3, then (step back) 4: the same steps for every configuration
    expect(seen).toEqual([
      'a0:0', 'a1:1', 'b0:0', 'b1:1',
      'a2:-1', 'a3:2', 'a4:3', 'b2:-1', 'b3:2', 'b4:3',
      'a5:-1', 'a6:4', 'b5:-1', 'b6:4',
    ]);
    expect(trained).toBe(7);
    expect(stepsInTurns(5, 2)).toBe(7);
    for (const [counted, block] of [[0, 8], [1, 8], [8, 8], [9, 8], [84, 8], [10, 3]] as const) {
      expect(stepsInTurns(counted, block)).toBe(await takeTurns([{}], counted, block, async () => {}));
    }
    await expect(takeTurns(configurations, 5, 0, async () => {})).rejects.toThrow(/block must be a positive integer/);
  });
});
