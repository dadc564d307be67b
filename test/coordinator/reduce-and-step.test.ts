/**
 * The coordinator's update with the last rank's gradient sum added inside the optimizer's pass
 * (plain SGD): the same parameters, float for float, as summing every rank first and stepping.
 */
import { describe, expect, it } from 'vitest';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { reduceInRankOrder } from '../../coordinator/trainer.js';
import { slice } from '../../src/data/mnist.js';
import { Sgd } from '../../src/optim/sgd.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';
import { DEEP_RELU, realMnist, seededNetwork } from '../helpers/fixtures.js';

describe('rank-order reduction fused into plain SGD', () => {
  const train = slice(realMnist().train, 0, 300);
  for (const [engine, make] of [['js', createJsKernels], ['wasm', createWasmKernels]] as const) {
    for (const world of [1, 2, 3]) {
      it(`${engine}, ${world} worker${world > 1 ? 's' : ''}: the same parameters as reducing first`, async () => {
        const { network, params } = seededNetwork(DEEP_RELU, 3, make(), 'scaled');
        const group = new InProcessGroup(DEEP_RELU, network.kernels, train, world, 64);
        const results = await group.computeStep({ step: 0, params, indices: Uint32Array.from({ length: 64 }, (_, i) => (i * 7) % 300) });
        const sgd = new Sgd(network.layout, network.kernels, { eta: 0.1, momentum: 0, weightDecay: 0, trainSize: 300 });
        const twoPass = network.allocParams();
        twoPass.set(params);
        const r1 = reduceInRankOrder(network, results, network.allocParams(), false);
        expect(r1.last).toBeNull();
        sgd.step(twoPass, r1.grads, r1.count);
        const fused = network.allocParams();
        fused.set(params);
        const r2 = reduceInRankOrder(network, results, network.allocParams(), true);
        expect(r2.last === null).toBe(world === 1);
        sgd.step(fused, r2.grads, r2.count, r2.last);
        expect(r2.count).toBe(64);
        let differ = 0;
        for (let i = 0; i < fused.length; i++) if (fused[i] !== twoPass[i]) differ++;
        expect(differ).toBe(0);
        expect(fused.some((x, i) => x !== params[i])).toBe(true); // the step did move them
        await group.close();
      });
    }
  }
});
