/**
 * The coordinator's CPU time during the exchange: recorded every profiled step where the workers
 * are other processes (real ws worker processes on 127.0.0.1 here), and not at all for in-process
 * and thread workers, which add their own compute to the process's CPU.
 */
import { describe, expect, it } from 'vitest';
import { openSession, trainingRun } from '../../coordinator/session.js';
import { runTraining } from '../../coordinator/trainer.js';
import { DEFAULTS, type TrainConfig } from '../../src/config.js';
import { slice } from '../../src/data/mnist.js';
import { netShape, observeCell } from '../../src/profile/observe.js';
import { Profiler } from '../../src/profile/profiler.js';
import { realMnist } from '../helpers/fixtures.js';
import { wsGroupWithWorkers } from '../coordinator/ws-workers.js';
import { profiledRun } from './helpers.js';

describe('coordinator CPU per step', () => {
  it('is measured for ws workers (other processes) and left out for in-process ones', async () => {
    const config: TrainConfig = { ...DEFAULTS, kernels: 'js', trainLimit: 2000, epochs: 1, batch: 20, maxSteps: 30, transport: 'ws', workers: 1 };
    const session = await openSession(config, realMnist());
    const group = await wsGroupWithWorkers({ spec: config.spec, train: session.train, world: 1, maxBatch: 20, data: 'local' });
    let profiler: Profiler;
    try {
      const run = trainingRun(session, group);
      run.evalSet = slice(session.evalSet, 0, 100);
      profiler = new Profiler(1, 5, 30);
      run.profiler = profiler;
      await runTraining(run);
    } finally {
      await group.close();
    }
    const steps = profiler.measuredSteps();
    expect(steps).toHaveLength(25);
    for (const s of steps) {
      expect(s.coordCpuMs).toBeGreaterThanOrEqual(0);
      // CPU time of one process's exchange cannot exceed the cores × the time it took
      expect(s.coordCpuMs!).toBeLessThanOrEqual((s.t2 - s.t1) * 2 + 1);
    }
    const ws = observeCell('ws', 20, netShape(config.spec.sizes), steps);
    // at least the encode and decode it timed itself ran on its CPU (the clock ticks coarser than a step, hence the median)
    expect(ws.coordCpuMs).toBeGreaterThan(0);

    const inproc = await profiledRun({ world: 2, batch: 20, steps: 12, burnIn: 2 });
    const recorded = inproc.profiler!.measuredSteps();
    // not even measured there: the process's CPU would hold the workers' compute
    expect(recorded.every((s) => Number.isNaN(s.coordCpuMs))).toBe(true);
    expect(observeCell('inproc', 20, netShape(config.spec.sizes), recorded).coordCpuMs).toBeNaN();
  });

  it('is left out for ws when the coordinator computes rank 0 itself: its CPU would hold that compute', async () => {
    const config: TrainConfig = { ...DEFAULTS, kernels: 'js', trainLimit: 2000, epochs: 1, batch: 20, maxSteps: 12, transport: 'ws', workers: 2 };
    const session = await openSession(config, realMnist());
    const group = await wsGroupWithWorkers({ spec: config.spec, train: session.train, world: 2, maxBatch: 20, data: 'local', coordinatorRank: true });
    const profiler = new Profiler(2, 2, 12);
    try {
      const run = trainingRun(session, group);
      run.evalSet = slice(session.evalSet, 0, 100);
      run.profiler = profiler;
      await runTraining(run);
    } finally {
      await group.close();
    }
    const steps = profiler.measuredSteps();
    expect(steps).toHaveLength(10);
    expect(steps.every((s) => Number.isNaN(s.coordCpuMs))).toBe(true);
    // rank 0 crossed no wire; rank 1 did
    expect(steps.every((s) => s.ranks[0]!.bytesSent === 0 && s.ranks[1]!.bytesSent > 0)).toBe(true);
  });
});
