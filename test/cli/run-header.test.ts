import { describe, expect, it } from 'vitest';
import { textReporter, type RunHeader } from '../../cli/report.js';
import { DEFAULTS, type TrainConfig } from '../../src/config.js';

function sgdLine(config: Partial<TrainConfig>, stepsPerEpoch = 390): string {
  const lines: string[] = [];
  const header: RunHeader = {
    config: { ...DEFAULTS, ...config }, dataDir: 'mnist', trainCount: 50_000, evalCount: 10_000, kernels: 'js', kernelNotes: [],
    paramsSource: 'gaussian init, seed 1', parameters: 23_860, stepsPerEpoch,
  };
  textReporter((l) => lines.push(l)).header(header);
  return lines.find((l) => l.trimStart().startsWith('sgd'))!.trim();
}

describe('the run header’s sgd line says which learning rate the run uses', () => {
  it('without scaling: eta as given', () => {
    expect(sgdLine({})).toMatch(/^sgd +eta 3, mini-batch 10,/);
  });

  it('scaled without warmup: the scaled eta, then the given one and the rule', () => {
    expect(sgdLine({ lrScale: 'linear', batch: 128 })).toMatch(/^sgd +eta 38\.4 \(3, linear scaling from batch 10 to 128\), mini-batch 128,/);
    expect(sgdLine({ lrScale: 'sqrt', batch: 40 })).toMatch(/eta 6 \(3, sqrt scaling from batch 10 to 40\)/);
  });

  it('with warmup: from the given eta to the scaled one, over how many epochs and steps', () => {
    expect(sgdLine({ lrScale: 'linear', batch: 128, warmupEpochs: 5 })).toMatch(/eta 3 → 38\.4 \(linear scaling from batch 10 to 128, warmup 5 epochs = 1,950 steps\)/);
  });
});

function workersLine(config: Partial<TrainConfig>): string {
  const lines: string[] = [];
  textReporter((l) => lines.push(l)).header({
    config: { ...DEFAULTS, ...config }, dataDir: 'mnist', trainCount: 50_000, evalCount: 10_000, kernels: 'js', kernelNotes: [],
    paramsSource: 'gaussian init, seed 1', parameters: 23_860, stepsPerEpoch: 390,
  });
  return lines.find((l) => l.trimStart().startsWith('workers'))!.trim();
}

describe('the run header’s workers line says how often the ranks are averaged', () => {
  it('averaging every step: the transport and worker count alone', () => {
    expect(workersLine({ transport: 'threads', workers: 2 })).toMatch(/^workers +threads x 2$/);
  });

  it('local SGD: every K steps, from which epoch, and whose momentum', () => {
    expect(workersLine({ transport: 'threads', workers: 2, averageEvery: 16 })).toMatch(/^workers +threads x 2, parameters averaged every 16 steps$/);
    expect(workersLine({ transport: 'threads', workers: 2, averageEvery: 16, localSgdAfter: 2, momentum: 0.9 }))
      .toMatch(/threads x 2, parameters averaged every 16 steps from epoch 3 \(every step before\), each rank keeping its own momentum$/);
    expect(workersLine({ transport: 'threads', workers: 2, averageEvery: 16, momentum: 0.9, averageOptimizerState: true })).toMatch(/every 16 steps, momentum averaged with them$/);
  });

  it('one worker has nothing to average, whatever --average-every says', () => {
    expect(workersLine({ averageEvery: 16 })).toMatch(/^workers +inproc x 1 \(single node\)$/);
  });
});
