import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_PHASES, STEP_PHASES } from '../../src/profile/phases.js';
import { stepPhases, stepWallMs } from '../../src/profile/step-phases.js';
import { summarize } from '../../src/profile/summary.js';
import { profileTables } from '../../src/profile/tables.js';
import { writeTrace, type TraceEvent } from '../../src/profile/trace.js';
import { profiledRun } from './helpers.js';

describe('profiler on real training runs (in-process group, real MNIST)', () => {
  for (const world of [1, 2, 3]) {
    it(`phases add up to each measured step within 5% (${world} worker${world > 1 ? 's' : ''})`, async () => {
      const { profiler, wallMs } = await profiledRun({ world, batch: 30, steps: 40, burnIn: 5 });
      const steps = profiler!.steps();
      expect(steps).toHaveLength(40);
      for (const rec of steps) {
        const sum = stepPhases(rec).reduce((a, b) => a + b, 0);
        expect(Math.abs(sum - stepWallMs(rec)) / stepWallMs(rec)).toBeLessThan(0.05);
      }
      // and the steps plus the evaluation account for the run as timed from outside the trainer.
      // Time outside them is only the loop's own bookkeeping, but a preemption by another process
      // can land there too and the run lasts ~10-20 ms: load only ever adds to the gap, so the
      // closest of three runs is compared (a part the profiler missed would show in all three).
      const uncovered = (p: NonNullable<typeof profiler>, wall: number) => {
        const stepsMs = p.steps().reduce((a, r) => a + stepWallMs(r), 0);
        const evalMs = p.evals.reduce((a, e) => a + e.end - e.start, 0);
        return Math.abs(stepsMs + evalMs - wall) / wall;
      };
      let closest = uncovered(profiler!, wallMs);
      for (let again = 0; again < 2 && closest >= 0.05; again++) {
        const rerun = await profiledRun({ world, batch: 30, steps: 40, burnIn: 5 });
        closest = Math.min(closest, uncovered(rerun.profiler!, rerun.wallMs));
      }
      expect(closest).toBeLessThan(0.05);
      const s = summarize(profiler!);
      expect(s.steps).toBe(35);
      expect(Math.abs(s.coverage - 1)).toBeLessThan(0.05);
      // in-process ranks run one after another: their compute, summed, is most of the step
      expect(s.phases.find((p) => p.phase === 'COMPUTE')!.share * world).toBeGreaterThan(0.5);
      expect(s.workers).toHaveLength(world);
    });
  }

  it('names a worker slowed on purpose as the straggler', async () => {
    const { profiler } = await profiledRun({ world: 3, batch: 30, steps: 25, burnIn: 3, faults: { slowRank: 1, extraComputeMs: 4 } });
    const s = summarize(profiler!);
    expect(s.straggler).not.toBeNull();
    expect(s.straggler!.rank).toBe(1);
    expect(s.straggler!.busyMs - s.straggler!.othersBusyMs).toBeGreaterThan(3.5);
    const text = profileTables(s).join('\n');
    expect(text).toMatch(/Straggler: rank 1,/);
  });

  it('profiling does not change what is computed', async () => {
    const plain = await profiledRun({ world: 2, batch: 20, steps: 15, burnIn: 0, profile: false });
    const profiled = await profiledRun({ world: 2, batch: 20, steps: 15, burnIn: 0 });
    expect(plain.profiler).toBeNull();
    expect(Array.from(profiled.params)).toEqual(Array.from(plain.params));
    expect(profiled.result.epochs[0]!.loss).toBe(plain.result.epochs[0]!.loss);
  });

  it('writes a Chrome trace that is valid JSON with a track per worker and every phase', async () => {
    const { profiler } = await profiledRun({ world: 2, batch: 20, steps: 12, burnIn: 2 });
    const file = join(mkdtempSync(join(tmpdir(), 'dpt-trace-')), 'trace.json');
    writeTrace(file, profiler!);
    const trace = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: TraceEvent[] };
    const spans = trace.traceEvents.filter((e) => e.ph === 'X');
    for (const phase of ALL_PHASES) expect(spans.some((e) => e.name === phase), phase).toBe(true);
    const tracks = trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.args!['name']);
    expect(tracks).toEqual(['coordinator', 'worker 0', 'worker 1']);
    for (const e of spans) {
      expect(Number.isFinite(e.ts) && e.ts >= 0).toBe(true);
      expect(Number.isFinite(e.dur) && e.dur! >= 0).toBe(true);
    }
    // every worker computed in every step, on its own track
    for (const tid of [1, 2]) expect(spans.filter((e) => e.tid === tid && e.name === 'COMPUTE')).toHaveLength(12);
    expect(STEP_PHASES.every((p) => spans.some((e) => e.name === p))).toBe(true);
  });
});
