import { describe, expect, it } from 'vitest';
import { usableCores } from '../../bench/harness/calibrate.js';

describe('usable cores', () => {
  it('measures between 1 and the core count on real threads, leaving no listener behind per round', async () => {
    // 12 rounds post 25 messages to the first thread: one leaked error listener per message
    // would pass Node's limit of 10 and raise a MaxListenersExceededWarning
    const warnings: Error[] = [];
    const onWarning = (w: Error) => { warnings.push(w); };
    process.on('warning', onWarning);
    try {
      const usable = await usableCores(2, 12, 200_000);
      expect(usable).toBeGreaterThanOrEqual(1);
      expect(usable).toBeLessThanOrEqual(2);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
