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
 * Each configuration trains its own copy of the initial parameters in the trainer's own loop
 * (runTraining: the seeded epoch permutation `dpt train` would use, the loss sums, the evaluation
 * after each epoch), with its own optimizer and profiler, held between steps until its turn
 * (StepGate); so the timing is the one `dpt train --profile` reports.
 */
import { stepsPerEpoch } from '../../src/data/batches.js';
import { slice } from '../../src/data/mnist.js';
import { Profiler } from '../../src/profile/profiler.js';
import type { CellRun } from './cell.js';
import { StepGate } from './step-gate.js';
import { startGroup, trainingRun, type Session } from '../../coordinator/session.js';
import { runTraining, type TrainingRun } from '../../coordinator/trainer.js';
import { stepsInRounds } from '../../coordinator/local-averaging.js';
import { cellConfig, type BenchConfiguration } from './configurations.js';
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
  run: TrainingRun;
  gate: StepGate;
  profiler: Profiler;
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

/** Steps each lane trains in takeTurns: the counted ones and one step back at the start of every turn after the first. */
export function stepsInTurns(counted: number, block: number): number {
  return counted + Math.max(0, Math.ceil(counted / block) - 1);
}

/** Runs every configuration of `grid` at `batch`, taking turns; one CellRun per configuration, in grid order. */
export async function runSideBySide(session: Session, initial: Float32Array, grid: BenchConfiguration[], batch: number, plan: SideBySidePlan): Promise<CellRun[]> {
  const { network, config } = session;
  const block = plan.block ?? BLOCK;
  const counted = plan.burnIn + plan.steps;
  const total = stepsInTurns(counted, block);
  const epochs = Math.ceil(total / stepsPerEpoch(session.train.count, batch));
  const evalSet = slice(session.evalSet, 0, Math.min(plan.evalLimit, session.evalSet.count));
  // one for every lane: they evaluate one at a time
  const evalWorkspace = network.createWorkspace(1000);
  const lanes: Lane[] = [];
  try {
    for (const configuration of grid) {
      const params = network.allocParams();
      params.set(initial);
      // a lane averaging every K steps takes a round where the others take a step: its run holds
      // the steps of `total` rounds
      const perEpoch = stepsPerEpoch(session.train.count, batch);
      const laneSteps = configuration.averageEvery > 1 ? stepsInRounds(total, perEpoch, configuration.averageEvery) : total;
      const laneEpochs = Math.max(epochs, Math.ceil(laneSteps / perEpoch));
      const laneSession: Session = { ...session, params, config: cellConfig(config, configuration, batch, laneEpochs, laneSteps) };
      const group = await startGroup(laneSession);
      const gate = new StepGate();
      // every step is recorded; the steps back and the burn-in are left out below
      const profiler = new Profiler(group.world, 0, total);
      lanes.push({ group, gate, profiler, run: { ...trainingRun(laneSession, group, evalWorkspace), evalSet, profiler, waitForTurn: gate.wait } });
    }
    // a run's failure reaches takeTurns through its gate
    const runs = lanes.map((lane) => lane.gate.follow(runTraining(lane.run)));
    const stepsBack = new Set<number>();
    const trained = await takeTurns(lanes, counted, block, async (lane, step, index) => {
      if (index < 0) stepsBack.add(step);
      await lane.gate.step();
    });
    if (trained !== total) throw new Error(`the lanes took ${trained} steps in turns, not the ${total} their runs were set up for`);
    const results = await Promise.all(runs);
    return lanes.map((lane, i) => ({
      world: lane.group.world, epochs: results[i]!.epochs, wallSeconds: [], params: Float32Array.from(lane.run.params),
      // the i-th record is the i-th turn step the lane was given (a step, or a round of K)
      measured: lane.profiler.steps().filter((_rec, i) => !stepsBack.has(i)).slice(plan.burnIn),
    }));
  } finally {
    await Promise.all(lanes.map((l) => l.group.close()));
  }
}
