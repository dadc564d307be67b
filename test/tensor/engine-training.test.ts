import { describe, expect, it } from 'vitest';
import { DEFAULTS, type KernelChoice } from '../../src/config.js';
import { loadMnist } from '../../src/data/mnist.js';
import { openSession, startGroup, trainingRun } from '../../coordinator/session.js';
import { runTraining } from '../../coordinator/trainer.js';
import { loadBlas } from '../../src/tensor/kernels-blas.js';

const choices: KernelChoice[] = ['js', 'wasm'];
if (!(loadBlas() instanceof Error)) choices.push('blas');

// Nielsen's network and hyper-parameters with the chapter-3 'scaled' init. With the chapter-1
// N(0,1) init many sigmoids start saturated and one epoch is chaotic: float32 rounding
// differences between engines (summation order, exp) move the accuracy by up to ~1% for some
// seeds, as much as changing the seed does (seeds 1-6 gave 73-91% with every engine, measured
// in docs/kernels.md). With scaled init the engines agreed to within one test image.
describe('one epoch of the default network with each engine', () => {
  it(`reaches the same test accuracy within 0.2% (${choices.join(', ')})`, async () => {
    const data = loadMnist();
    const accuracy = new Map<KernelChoice, number>();
    for (const kernels of choices) {
      const session = await openSession({ ...DEFAULTS, init: 'scaled', epochs: 1, kernels }, data);
      expect(session.kernels.name).toBe(kernels);
      const group = await startGroup(session);
      try {
        const result = await runTraining(trainingRun(session, group));
        const e = result.epochs[0]!;
        accuracy.set(kernels, e.testCorrect / e.testTotal);
      } finally {
        await group.close();
      }
    }
    const js = accuracy.get('js')!;
    expect(js).toBeGreaterThan(0.9); // one epoch of this net is ~93-94%
    for (const [name, acc] of accuracy) {
      expect(Math.abs(acc - js), `${name}: ${acc} vs js ${js}`).toBeLessThanOrEqual(0.002);
    }
  });
});
