/** A real training run on real MNIST with a profiler attached, for the profile tests. */
import { InProcessGroup, type InProcessFaults } from '../../coordinator/inproc-group.js';
import { openSession, trainingRun } from '../../coordinator/session.js';
import { runTraining } from '../../coordinator/trainer.js';
import { DEFAULTS, type TrainConfig } from '../../src/config.js';
import { slice } from '../../src/data/mnist.js';
import { Profiler } from '../../src/profile/profiler.js';
import { realMnist } from '../helpers/fixtures.js';

export interface ProfiledRunOptions {
  world: number;
  batch: number;
  steps: number;
  burnIn: number;
  faults?: InProcessFaults;
  profile?: boolean;
  config?: Partial<TrainConfig>;
}

export async function profiledRun(o: ProfiledRunOptions) {
  const config: TrainConfig = { ...DEFAULTS, kernels: 'js', trainLimit: 2000, epochs: 1, batch: o.batch, maxSteps: o.steps, workers: o.world, ...o.config };
  const session = await openSession(config, realMnist());
  const group = new InProcessGroup(config.spec, session.kernels, session.train, o.world, o.batch, o.faults ?? null);
  const run = trainingRun(session, group);
  run.evalSet = slice(session.evalSet, 0, 200);
  const profiler = o.profile === false ? null : new Profiler(o.world, o.burnIn, o.steps);
  run.profiler = profiler;
  const t0 = performance.now();
  const result = await runTraining(run);
  const wallMs = performance.now() - t0;
  await group.close();
  return { profiler, result, wallMs, params: session.params };
}
