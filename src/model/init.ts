/**
 * Parameter initialisation. gaussian: every weight and bias from N(0, 1), as in Nielsen's
 * network.py (chapter 1). scaled: weights from N(0, 1/n_in), biases N(0, 1) (chapter 3), which
 * keeps hidden neurons out of saturation in wider nets.
 */
import type { ParamLayout } from '../tensor/layout.js';
import type { Rng } from '../tensor/rng.js';

export type InitScheme = 'gaussian' | 'scaled';
export const INIT_SCHEMES: readonly InitScheme[] = ['gaussian', 'scaled'];

export function initParams(params: Float32Array, layout: ParamLayout, scheme: InitScheme, rng: Rng): void {
  layout.check(params);
  for (const t of layout.tensors) {
    // weights are [OC, C]; the fan-in is the second dimension
    const std = scheme === 'scaled' && t.shape.length === 2 ? 1 / Math.sqrt(t.shape[1]!) : 1;
    for (let i = 0; i < t.size; i++) params[t.offset + i] = rng.nextGaussian() * std;
  }
}
