/**
 * The fixed-steps cells of one (net, batch) of `dpt bench`, measured side by side. Every
 * configuration keeps its worker group running for the whole repetition, and they take turns in
 * blocks of BLOCK steps. On a shared machine the speed changes from second to second (another
 * job, the host's other tenants): measured one after another, a cell could land in a slow spell
 * and its neighbour in a fast one, and their ratio — the speedup — would move by a quarter
 * between runs. Taking turns puts every spell on every configuration alike. Blocks rather than
 * single steps, because an epoch runs one configuration's steps back to back: turns of one step
 * would start every step with the caches full of another configuration's data and its threads
 * or processes just woken.
 *
 * Every turn after the first starts with one step that is not profiled: the group sat idle
 * through the others' turns, and its first step back pays a wake-up that real training, one
 * configuration's steps back to back, never pays (threads or processes woken from sleep on vCPUs
 * the host had descheduled). Counted, it showed as a slow step in every turn: threads x1 at
 * 784-30-10 / batch 128 had a mean step of 1.76 ms against a median of 0.88 ms.
 *
 * Each configuration trains its own copy of the initial parameters on the same seeded batches
 * (the order `dpt train` would use), with its own optimizer and profiler; the trainer's own
 * profiled step does the work, so the timing is the one `dpt train --profile` reports.
 */
import { batchIndices, epochPermutation, stepsPerEpoch } from '../../src/data/batches.js';
import { slice } from '../../src/data/mnist.js';
import { deriveSeed } from '../../src/config.js';
import { Sgd } from '../../src/optim/sgd.js';
import { Profiler } from '../../src/profile/profiler.js';
import { Rng } from '../../src/tensor/rng.js';
import type { CellRun } from './cell.js';
import { startGroup, type Session } from '../../coordinator/session.js';
import { profiledTrainStep, trainStep } from '../../coordinator/trainer.js';
import type { TransportName } from '../../src/config.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';

/**
 * Steps a configuration takes in a row before the next one's turn: enough that a turn is mostly
 * steady state (an epoch runs one configuration's steps back to back), few enough that a burst of
 * load from another process still hits every configuration alike.
 */
export const BLOCK = 8;

export interface SideBySidePlan {
  /** measured steps per configuration */
  steps: number;
  burnIn: number;
  /** images of the eval set the accuracy after the run is measured on */
  evalLimit: number;
  block?: number;
}

interface Lane {
  group: WorkerGroup;
  params: Float32Array;
  gradSum: Float32Array;
  sgd: Sgd;
  profiler: Profiler;
  loss: number;
  examples: number;
  trainMs: number;
}

/**
 * Steps every lane through `counted` steps, lane after lane in turns of `block`; every turn after
 * the first starts with one step that does not count (index -1: the step back after sleeping
 * through the others' turns). `step(lane, s, index)` trains training step s (the same s for every
 * lane) and index is the counted step's number from 0. Returns the steps each lane trained.
 *
 * Nothing tells a group its turn is over: threads that poll for the next step poll for a few
 * times their usual gap between steps (worker/spin-budget.ts) and then sleep, so a lane's pollers
 * reach into the next lane's turn by that much at most: about its first step, the step back that
 * does not count.
 */
export async function takeTurns<L>(lanes: L[], counted: number, block: number,
  step: (lane: L, s: number, index: number) => Promise<void>): Promise<number> {
  if (!(Number.isInteger(block) && block >= 1)) throw new RangeError(`block must be a positive integer, got ${block}`);
  let g = 0;
  for (let done = 0, turn = 0; done < counted; turn++) {
    const n = Math.min(block, counted - done);
    const back = turn > 0 ? 1 : 0;
    for (const lane of lanes) {
      for (let i = -back; i < n; i++) await step(lane, g + back + i, i < 0 ? -1 : done + i);
    }
    g += back + n;
    done += n;
  }
  return g;
}

/** Runs every configuration of `grid` at `batch`, taking turns; one CellRun per configuration, in grid order. */
export async function runSideBySide(session: Session, initial: Float32Array, grid: [TransportName, number][], batch: number, plan: SideBySidePlan): Promise<CellRun[]> {
  const { network, train, config } = session;
  const total = plan.burnIn + plan.steps;
  const perEpoch = stepsPerEpoch(train.count, batch);
  const block = plan.block ?? BLOCK;
  const lanes: Lane[] = [];
  try {
    for (const [transport, workers] of grid) {
      const group = await startGroup({ ...session, config: { ...config, transport, workers, batch, epochs: Math.ceil(total / perEpoch), maxSteps: total } });
      const params = network.allocParams();
      params.set(initial);
      lanes.push({
        group, params, gradSum: network.allocParams(), profiler: new Profiler(group.world, plan.burnIn, total), loss: 0, examples: 0, trainMs: 0,
        sgd: new Sgd(network.layout, session.kernels, { eta: config.eta, momentum: config.momentum, weightDecay: config.weightDecay, trainSize: train.count }),
      });
    }
    // the data order of `dpt train` with this seed: one permutation per epoch, drawn in turn
    const orderRng = new Rng(deriveSeed(config.seed, 'order'));
    const perms: Uint32Array[] = [];
    const permFor = (epoch: number): Uint32Array => {
      while (perms.length <= epoch) perms.push(epochPermutation(train.count, orderRng, config.shuffle));
      return perms[epoch]!;
    };
    const g = await takeTurns(lanes, total, block, async (lane, step, index) => {
      const run = { network, sgd: lane.sgd, group: lane.group, params: lane.params };
      const perm = permFor(Math.floor(step / perEpoch));
      const t0 = performance.now();
      const r = index < 0
        ? await trainStep(run, lane.gradSum, step, batchIndices(perm, step % perEpoch, batch))
        : await profiledTrainStep(run, lane.profiler, lane.gradSum, step, perm, step % perEpoch, batch);
      lane.trainMs += performance.now() - t0;
      lane.loss += r.loss;
      lane.examples += r.count;
    });
    const evalSet = slice(session.evalSet, 0, Math.min(plan.evalLimit, session.evalSet.count));
    const evalWorkspace = network.createWorkspace(1000);
    return lanes.map((lane) => {
      const e0 = performance.now();
      const testCorrect = network.evaluate(lane.params, evalWorkspace, evalSet);
      const trainSeconds = lane.trainMs / 1000;
      return {
        world: lane.group.world, measured: lane.profiler.measuredSteps(), params: Float32Array.from(lane.params),
        epochs: [{
          epoch: Math.ceil(g / perEpoch), steps: g, examples: lane.examples, loss: lane.loss / lane.examples,
          testCorrect, testTotal: evalSet.count, trainSeconds, evalSeconds: (performance.now() - e0) / 1000, samplesPerSecond: lane.examples / trainSeconds,
        }],
      };
    });
  } finally {
    await Promise.all(lanes.map((l) => l.group.close()));
  }
}
