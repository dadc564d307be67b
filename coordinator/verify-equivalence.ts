/**
 * `dpt train --verify-equivalence K`: before training, K steps from the run's initial parameters
 * over the run's first K batches, once single-node (in-process, world 1) and once on the run's
 * own worker group; the largest absolute parameter difference must stay within the tolerance,
 * or training does not start. The run's parameters and data order are left untouched.
 */
import { deriveSeed } from '../src/config.js';
import { maxAbsDiff, runSteps, type StepsPlan } from './equivalence.js';
import { InProcessGroup } from './inproc-group.js';
import type { Session } from './session.js';
import type { WorkerGroup } from './worker-group.js';

export class EquivalenceError extends Error {
  override readonly name = 'EquivalenceError';
}

export interface EquivalenceReport {
  steps: number;
  maxAbsDiff: number;
  tolerance: number;
  seconds: number;
}

export async function verifyEquivalence(session: Session, group: WorkerGroup, steps: number, tolerance: number): Promise<EquivalenceReport> {
  const t0 = performance.now();
  const { config } = session;
  const plan: StepsPlan = {
    network: session.network, initialParams: session.params, train: session.train, batch: config.batch, steps,
    orderSeed: deriveSeed(config.seed, 'order'), shuffle: config.shuffle,
    sgd: { eta: config.eta, momentum: config.momentum, weightDecay: config.weightDecay },
  };
  const single = new InProcessGroup(config.spec, session.kernels, session.train, 1, config.batch);
  const reference = await runSteps(single, plan);
  const distributed = await runSteps(group, plan);
  const diff = maxAbsDiff(reference, distributed);
  const report = { steps, maxAbsDiff: diff, tolerance, seconds: (performance.now() - t0) / 1000 };
  if (!(diff <= tolerance)) {
    throw new EquivalenceError(`--verify-equivalence ${steps}: after ${steps} steps the ${group.transport} group with ${group.world} workers ` +
      `differs from single-node by up to ${diff} per parameter, more than the tolerance ${tolerance}; not training. ` +
      `This is a bug in that transport (or, for long checks, accumulated float rounding: pass a larger --equivalence-tolerance).`);
  }
  return report;
}
