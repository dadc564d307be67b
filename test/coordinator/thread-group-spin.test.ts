/**
 * Polling before sleeping (thread-task.ts awaitNextStep): a thread that has finished its shard
 * polls for the next step for up to spinMs, at most cores - 1 threads at once, none when the
 * group has more threads than cores — and a polling thread still stops when the group closes.
 */
import { describe, expect, it } from 'vitest';
import { ThreadGroup } from '../../coordinator/thread-group.js';
import { slice } from '../../src/data/mnist.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';

const train = slice(realMnist().train, 0, 200);
const indices = Uint32Array.from({ length: 20 }, (_, i) => i);

/** The most threads seen polling at once over `ms` after a step, sampled every few hundred µs. */
async function pollersAfterStep(group: ThreadGroup, ms: number): Promise<number[]> {
  const { params } = seededNetwork(NIELSEN, 1, createJsKernels());
  await group.computeStep({ step: 0, params, indices });
  const seen: number[] = [];
  const until = performance.now() + ms;
  while (performance.now() < until) {
    seen.push(group.spinningThreads);
    await new Promise((r) => setTimeout(r, 0));
  }
  return seen;
}

describe('thread group: poll, then sleep', () => {
  it('lets at most cores - 1 threads poll, and they go to sleep after spinMs', async () => {
    const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 2, maxBatch: 20, spinMs: 150, cores: 2 });
    try {
      const seen = await pollersAfterStep(group, 600);
      expect(Math.max(...seen)).toBe(1); // one of the two polls; the other sleeps
      expect(seen.at(-1)).toBe(0); // 150 ms later both sleep
    } finally {
      await group.close();
    }
  });

  it('never polls with more threads than cores, or with spinMs 0', async () => {
    for (const o of [{ world: 3, spinMs: 150 }, { world: 2, spinMs: 0 }]) {
      const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, maxBatch: 20, cores: 2, ...o });
      try {
        expect(Math.max(...await pollersAfterStep(group, 100))).toBe(0);
      } finally {
        await group.close();
      }
    }
  });

  it('closes while a thread is polling (no thread left running)', async () => {
    const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 2, maxBatch: 20, spinMs: 60_000, cores: 2 });
    const seen = await pollersAfterStep(group, 50);
    expect(Math.max(...seen)).toBe(1);
    await group.close(); // a poller that missed the stop would hold this for a minute (the test's timeout fails first)
    expect(group.liveThreads).toBe(0);
  });
});
