/**
 * `dpt train --transport threads --verify-equivalence K` end to end through trainCommand: the
 * check runs on the real thread pool before training, prints the largest parameter difference,
 * and refuses to train when that exceeds the tolerance.
 */
import { describe, expect, it } from 'vitest';
import { trainCommand } from '../../cli/train.js';
import { DEFAULTS, type TrainConfig } from '../../src/config.js';

const config: TrainConfig = {
  ...DEFAULTS, epochs: 1, trainLimit: 300, maxSteps: 5, kernels: 'js', transport: 'threads', workers: 2, verifyEquivalence: 12,
};

describe('threads: --verify-equivalence', () => {
  it('prints the largest parameter difference after K steps and then trains', async () => {
    const lines: string[] = [];
    const result = await trainCommand(config, (l) => lines.push(l));
    const check = lines.find((l) => l.startsWith('Equivalence:'));
    expect(check).toMatch(/^Equivalence: 12 steps single-node vs threads x 2: max \|Δparam\| = \d\.\d\de-\d+ \(tolerance 0\.00001\)/);
    // the check leaves the run itself alone: training still takes its own 5 steps from the initial parameters
    expect(result.steps).toBe(5);
    expect(lines.some((l) => l.startsWith('Epoch 1:'))).toBe(true);
  });

  it('refuses to train when the difference exceeds the tolerance', async () => {
    const lines: string[] = [];
    // two shards summed in float32 round differently from one sum of ten: a zero tolerance must fail
    await expect(trainCommand({ ...config, equivalenceTolerance: 0 }, (l) => lines.push(l)))
      .rejects.toThrow(/--verify-equivalence 12: after 12 steps the threads group with 2 workers differs from single-node by up to .* more than the tolerance 0; not training/);
    expect(lines.some((l) => l.startsWith('Epoch'))).toBe(false);
  });
});
