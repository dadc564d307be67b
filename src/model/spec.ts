/**
 * What a network is: layer sizes, the hidden activation and the cost (which fixes the output
 * activation). Pure data, serialisable into a model file's metadata and a handshake.
 */
import type { Cost, HiddenActivation } from '../tensor/kernels.js';
import { ParamLayout } from '../tensor/layout.js';

export interface NetworkSpec {
  /** e.g. [784, 30, 10]: input width, hidden widths, number of classes */
  sizes: number[];
  activation: HiddenActivation;
  cost: Cost;
}

export const HIDDEN_ACTIVATIONS: readonly HiddenActivation[] = ['sigmoid', 'relu', 'tanh'];
export const COSTS: readonly Cost[] = ['quadratic', 'cross-entropy'];

/** Tensors named like torch.nn.Linear inside a Sequential: layers.{i}.weight [OC, C], layers.{i}.bias [OC]. */
export function layoutFor(spec: NetworkSpec): ParamLayout {
  const entries: { name: string; shape: number[]; decays: boolean }[] = [];
  for (let i = 0; i + 1 < spec.sizes.length; i++) {
    const C = spec.sizes[i]!;
    const OC = spec.sizes[i + 1]!;
    entries.push({ name: `layers.${i}.weight`, shape: [OC, C], decays: true });
    entries.push({ name: `layers.${i}.bias`, shape: [OC], decays: false });
  }
  return new ParamLayout(entries);
}

export function describeSpec(spec: NetworkSpec): string {
  return `${spec.sizes.join('-')} ${spec.activation}, ${spec.cost === 'quadratic' ? 'sigmoid output + quadratic cost' : 'softmax output + cross-entropy cost'}`;
}

export function validateSpec(spec: NetworkSpec): void {
  if (spec.sizes.length < 2) throw new Error(`a network needs at least 2 layer sizes, got ${spec.sizes.join(',')}`);
  for (const s of spec.sizes) {
    if (!Number.isInteger(s) || s < 1) throw new Error(`layer sizes must be positive integers, got ${spec.sizes.join(',')}`);
  }
  if (!HIDDEN_ACTIVATIONS.includes(spec.activation)) throw new Error(`unknown activation ${spec.activation}`);
  if (!COSTS.includes(spec.cost)) throw new Error(`unknown cost ${spec.cost}`);
}
