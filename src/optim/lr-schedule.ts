/**
 * The learning rate of each step, for runs whose global batch grows with the worker count:
 * Goyal et al. 2017's linear scaling rule (or its square-root variant) against a reference batch,
 * with a linear warmup from the unscaled rate. A pure function of the global step, so a resumed
 * run gets the same rate at the same step and stays bit-identical.
 *
 * dpt's update is w ← w − (η/m) Σ_x ∇C_x: η multiplies the MEAN gradient over the batch, the
 * convention Goyal's rule is stated in. So "linear" scales η itself, η_eff = η · batch / reference;
 * the 1/m stays as it is (without scaling, a larger batch with the same η takes the same-sized
 * step with fewer steps an epoch).
 */

export type LrScale = 'none' | 'linear' | 'sqrt';
export const LR_SCALES: readonly LrScale[] = ['none', 'linear', 'sqrt'];

export interface LrSchedule {
  /** η as given (--eta): the rate tuned at the reference batch, and where warmup starts */
  eta: number;
  scale: LrScale;
  /** the batch η was tuned for (--lr-reference-batch) */
  referenceBatch: number;
  /** the global batch of this run */
  batch: number;
  /** epochs over which the rate ramps from η to the scaled η (0: none); may be fractional */
  warmupEpochs: number;
}

/** η_eff: η · batch/reference (linear), η · sqrt(batch/reference) (sqrt), η (none). */
export function scaledEta(s: LrSchedule): number {
  switch (s.scale) {
    case 'none': return s.eta;
    case 'linear': return s.eta * (s.batch / s.referenceBatch);
    case 'sqrt': return s.eta * Math.sqrt(s.batch / s.referenceBatch);
  }
}

/** The warmup in steps: warmupEpochs × stepsPerEpoch, rounded to the nearest step. */
export function warmupSteps(s: LrSchedule, stepsPerEpoch: number): number {
  return Math.round(s.warmupEpochs * stepsPerEpoch);
}

/**
 * η for the step with 0-based index `globalStep`. During the T warmup steps the rate grows by a
 * constant each step, η + (η_eff − η) · t/T, so step 0 uses η and step T, the first after
 * warmup, the full η_eff (Goyal's "gradual warmup"); from then on η_eff.
 */
export function learningRate(globalStep: number, stepsPerEpoch: number, s: LrSchedule): number {
  const target = scaledEta(s);
  const warmup = warmupSteps(s, stepsPerEpoch);
  if (globalStep >= warmup) return target;
  return s.eta + (target - s.eta) * (globalStep / warmup);
}
