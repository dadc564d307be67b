import { describe, expect, it } from 'vitest';
import { StepGate } from '../../bench/harness/step-gate.js';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { runTraining, type TrainingRun } from '../../coordinator/trainer.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import { slice } from '../../src/data/mnist.js';
import { Sgd } from '../../src/optim/sgd.js';
import { Rng } from '../../src/tensor/rng.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';

function gatedRun(gate: StepGate, steps: number, onStep: () => void, group?: WorkerGroup): TrainingRun {
  const train = slice(realMnist().train, 0, 300);
  const { network, params } = seededNetwork(NIELSEN);
  return {
    network, params, group: group ?? new InProcessGroup(NIELSEN, network.kernels, train, 1, 10), train,
    sgd: new Sgd(network.layout, network.kernels, { eta: 3, momentum: 0, weightDecay: 0, trainSize: train.count }),
    evalSet: slice(realMnist().test, 0, 50), evalWorkspace: network.createWorkspace(50), orderRng: new Rng(1),
    epochs: 1, batch: 10, shuffle: true, maxSteps: steps, events: { onStep }, waitForTurn: gate.wait,
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('a training run held at a step gate', () => {
  it('takes exactly one step each time it is let through, and the time it is held is not training time', async () => {
    const gate = new StepGate();
    let stepped = 0;
    const done = gate.follow(runTraining(gatedRun(gate, 6, () => stepped++)));
    await sleep(50);
    expect(stepped).toBe(0);
    for (let i = 1; i <= 3; i++) {
      await gate.step();
      expect(stepped).toBe(i);
    }
    await sleep(1000);
    expect(stepped).toBe(3);
    for (let i = 4; i <= 6; i++) await gate.step();
    const result = await done;
    expect(stepped).toBe(6);
    expect(result.steps).toBe(6);
    // six steps of 784-30-10 at batch 10 take milliseconds; the second held at the gate does not count
    expect(result.epochs[0]!.trainSeconds).toBeLessThan(0.5);
  });

  it('passes on the error the run failed with, and refuses a step after the run has ended', async () => {
    const train = slice(realMnist().train, 0, 300);
    const inner = new InProcessGroup(NIELSEN, seededNetwork(NIELSEN).network.kernels, train, 1, 10);
    const failing: WorkerGroup = {
      transport: 'inproc', world: 1, close: () => inner.close(),
      computeStep: async (req) => {
        if (req.step === 1) throw new Error('worker lost at step 1');
        return inner.computeStep(req);
      },
    };
    const gate = new StepGate();
    gate.follow(runTraining(gatedRun(gate, 4, () => {}, failing)));
    await gate.step();
    await expect(gate.step()).rejects.toThrow('worker lost at step 1');

    const short = new StepGate();
    const ended = short.follow(runTraining(gatedRun(short, 1, () => {})));
    await short.step();
    await ended;
    await expect(short.step()).rejects.toThrow(/ended before it was given all its steps/);
  });
});
