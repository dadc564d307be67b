/**
 * `dpt bench` with real thread and WebSocket workers: the compiled CLI as a process, a piscina
 * pool and worker processes of its own, a few steps on 300 MNIST images. ws xN is N ranks: rank 0
 * on the coordinator and N-1 worker processes (ws x1: one process).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { layoutFor } from '../../src/model/spec.js';
import type { BenchOutcome } from '../../src/profile/outcome.js';
import { FrameWriter, wireBytes, type Tensor } from '../../src/protocol/codec.js';
import { alive, dpt, workerPids } from '../helpers/cli.js';

const BATCH = 16;
const STEPS = 12;
const SIZES = [784, 30, 10];

/** Bytes of one frame on the wire: the codec's frame of these sections and envelope, plus the WebSocket header. */
function frameOnWire(sections: [string, Tensor][], envelope: Record<string, unknown>, masked: boolean): number {
  return wireBytes(new FrameWriter().encode(sections, () => envelope).length, masked);
}

describe('dpt bench with thread and WebSocket workers (compiled CLI, real threads and processes)', () => {
  let outcome: BenchOutcome;
  let stderr: string;

  beforeAll(() => {
    const r = dpt(['bench', '--transport', 'threads,ws', '--workers', '1,2', '--batch', String(BATCH), '--sizes', SIZES.join(','),
      '--train-limit', '300', '--steps', String(STEPS), '--burn-in', '2', '--repeats', '1', '--eval-limit', '100', '--kernels', 'js', '--json'], 240_000);
    stderr = r.stderr;
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    outcome = JSON.parse(lines[0]!) as BenchOutcome;
  }, 300_000);

  it('measures the baseline first, then every requested configuration, each for the requested steps', () => {
    expect(outcome.cells.map((c) => `${c.transport} x${c.workers}@${c.batch}`))
      .toEqual([`inproc x1@${BATCH}`, `threads x1@${BATCH}`, `threads x2@${BATCH}`, `ws x1@${BATCH}`, `ws x2@${BATCH}`]);
    for (const c of outcome.cells) {
      expect(c.summary.steps).toBe(STEPS);
      expect(c.summary.world).toBe(c.workers);
      expect(c.net.sizes).toEqual(SIZES);
    }
    expect(outcome.breakEvens.map((b) => `${b.transport} x${b.workers}`)).toEqual(['threads x2', 'ws x2']);
    const verdict = outcome.verdict.join('\n');
    expect(verdict).toMatch(/Break-even, threads x2:/);
    expect(verdict).toMatch(/Break-even, ws x2:/);
  });

  it('ends every configuration on the baseline\'s parameters, through the same losses', () => {
    const [base, ...others] = outcome.cells;
    expect(base!.maxParamDiff).toBe(0);
    for (const c of others) {
      // one worker adds nothing up differently; two add two shard sums (float rounding only)
      if (c.workers === 1) expect(c.maxParamDiff, `${c.transport} x1`).toBe(0);
      else expect(c.maxParamDiff, `${c.transport} x${c.workers}`).toBeLessThan(1e-5);
      expect(c.losses).toHaveLength(STEPS);
      c.losses.forEach((loss, i) => expect(Math.abs(loss - base!.losses[i]!)).toBeLessThan(1e-5));
    }
    // the parameters moved: a run that did not train would agree with the baseline too
    expect(base!.losses.at(-1)!).toBeLessThan(base!.losses[0]!);
  });

  it('puts bytes on the wire for ws worker ranks only: per rank and step, a parameters-and-indices frame out and a gradient frame back; none for rank 0 on the coordinator', () => {
    const P = layoutFor({ sizes: SIZES, activation: 'sigmoid', cost: 'quadratic' }).size;
    for (const c of outcome.cells) {
      if (c.transport !== 'ws') {
        expect(c.summary.bytesPerStep, `${c.transport} x${c.workers}`).toBe(0);
        continue;
      }
      const shard = BATCH / c.workers;
      // the steps of this run are below 128: their numbers take one byte in the envelope, as here
      const out = frameOnWire([['params', new Float32Array(P)], ['indices', new Uint32Array(shard)]], { type: 'step', step: 1, count: shard }, false);
      // the reply's envelope carries the loss and four timings: 9 bytes each as doubles, fewer when one is a whole number
      const timing = { loadMs: 0.1, computeMs: 0.1, decodeMs: 0.1, encodeMs: 0.1 };
      const back = frameOnWire([['grads', new Float32Array(P)]], { type: 'grads', step: 1, count: shard, loss: 0.1, timing }, true);
      expect(c.summary.workers.map((w) => w.rank)).toEqual(Array.from({ length: c.workers }, (_, r) => r));
      for (const w of c.summary.workers) {
        if (c.workers > 1 && w.rank === 0) {
          expect([w.bytesSentPerStep, w.bytesReceivedPerStep], `ws x${c.workers} rank 0, on the coordinator`).toEqual([0, 0]);
          continue;
        }
        expect(w.bytesSentPerStep, `ws x${c.workers} rank ${w.rank}`).toBe(out);
        expect(w.bytesReceivedPerStep).toBeLessThanOrEqual(back);
        expect(w.bytesReceivedPerStep).toBeGreaterThanOrEqual(back - 5 * 8);
      }
      expect(c.summary.bytesPerStep).toBeCloseTo(c.summary.workers.reduce((a, w) => a + w.bytesSentPerStep + w.bytesReceivedPerStep, 0), 6);
    }
  });

  it('stops the worker processes it started', () => {
    const pids = workerPids(stderr.split('\n'));
    expect(pids).toHaveLength(2); // ws x1, then ws x2 (rank 1; rank 0 on the coordinator)
    for (const pid of pids) expect(alive(pid), `worker pid ${pid}`).toBe(false);
  });
});
