import { describe, expect, it } from 'vitest';
import { measureLockstep } from '../../bench/harness/lockstep.js';
import { initParams } from '../../src/model/init.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';
import { Rng } from '../../src/tensor/rng.js';
import { ShardComputer } from '../../worker/compute.js';
import { NIELSEN, realMnist } from '../helpers/fixtures.js';

const train = realMnist().train;
const D = train.rows * train.cols;

/**
 * The probe's work done directly on this thread: training steps on the first `shard` rows. One
 * engine for the whole file, warmed up once, so its wasm code is optimised as the probe's is.
 */
const kernels = createWasmKernels();
const computers = new Map<number, { step: () => void; steps: number }>();
/** ms per step of one burst of about BURST_MS, as the probe times a burst */
function directMs(shard: number): number {
  let c = computers.get(shard);
  if (c === undefined) {
    const computer = new ShardComputer(NIELSEN, kernels, shard);
    const params = computer.network.allocParams();
    initParams(params, computer.network.layout, 'scaled', new Rng(1));
    const pixels = train.images.subarray(0, shard * D);
    const labels = train.labels.subarray(0, shard);
    const step = () => { computer.computeShipped(params, pixels, labels, shard); };
    let n = 0;
    const t0 = performance.now();
    while (performance.now() < t0 + 300) { step(); n++; }
    c = { step, steps: Math.max(3, Math.round(BURST_MS / ((performance.now() - t0) / n))) };
    computers.set(shard, c);
  }
  const t0 = performance.now();
  for (let s = 0; s < c.steps; s++) c.step();
  return (performance.now() - t0) / c.steps;
}

/**
 * Other jobs share the cores, and load only ever adds time: the probe (one burst per point per
 * turn) and the direct timing take turns, and the least disturbed burst of each is compared. The
 * probe itself checks that every rank computed whole shards (a half shard throws); what this
 * bound must catch is a figure that is not one step of that shard: a burst reported as a step
 * (x3 or more) or another shard size's time (x4 or more between the sizes below). A factor of 2
 * either way catches those and leaves room for a loaded machine.
 */
const FACTOR = 2;
const TURNS = 9;
const BURST_MS = 20;

describe('lockstep probe (real threads computing the net\'s training step)', () => {
  it('times one rank\'s step at each shard size as the same steps timed directly', async () => {
    const probed: Record<number, number[]> = { 32: [], 256: [] };
    const direct: Record<number, number[]> = { 32: [], 256: [] };
    for (let turn = 0; turn < TURNS; turn++) {
      const table = await measureLockstep({ spec: NIELSEN, kernels: 'wasm', train, points: [{ shard: 32, ranks: 1 }, { shard: 256, ranks: 1 }], rounds: 1, burstMs: BURST_MS });
      for (const n of [32, 256]) {
        probed[n]!.push(table[1]![n]!);
        direct[n]!.push(directMs(n));
      }
    }
    for (const n of [32, 256]) {
      const ratio = Math.min(...probed[n]!) / Math.min(...direct[n]!);
      const why = `shard ${n}: probe ${probed[n]!.join(', ')} ms, direct ${direct[n]!.join(', ')} ms`;
      expect(ratio, why).toBeLessThanOrEqual(FACTOR);
      expect(ratio, why).toBeGreaterThanOrEqual(1 / FACTOR);
    }
  });

  it('two ranks in lockstep: every step waits for both, each computing a whole shard', async () => {
    const table = await measureLockstep({ spec: NIELSEN, kernels: 'wasm', train, points: [{ shard: 256, ranks: 2 }], rounds: 3, burstMs: BURST_MS });
    const alone = Math.min(directMs(256), directMs(256), directMs(256));
    // each rank computes a whole shard (the probe checks its examples), so a step of two at once
    // is at least one rank's step alone: sharing the cores with others can only add to it
    expect(table[2]![256]! / alone, `2 ranks ${table[2]![256]} ms, one alone ${alone} ms`).toBeGreaterThanOrEqual(1 / FACTOR);
    expect(Object.keys(table)).toEqual(['2']);
  });

  it('refuses a shard or ranks that are not positive integers', async () => {
    await expect(measureLockstep({ spec: NIELSEN, kernels: 'wasm', train, points: [{ shard: 0, ranks: 1 }] })).rejects.toThrow(/shard must be a positive integer, got 0/);
    await expect(measureLockstep({ spec: NIELSEN, kernels: 'wasm', train, points: [{ shard: 8, ranks: 1.5 }] })).rejects.toThrow(/ranks must be a positive integer, got 1.5/);
  });
});
