/**
 * The named phases of a training step and the five groups the tables and charts use. A phase is
 * a name on the coordinator's monotonic clock (performance.now()); docs/profiling.md says how
 * each one is measured.
 */

export const DATA_LOAD = 'DATA_LOAD';
export const BROADCAST = 'BROADCAST';
export const ENCODE = 'ENCODE';
export const HANDOFF = 'HANDOFF';
export const DECODE = 'DECODE';
export const COMPUTE = 'COMPUTE';
export const WAIT = 'WAIT';
export const REDUCE = 'REDUCE';
export const OPTIMIZER = 'OPTIMIZER';
export const EVAL = 'EVAL';

/** The phases that make up a training step, in the order a step runs through them. */
export const STEP_PHASES = [DATA_LOAD, BROADCAST, ENCODE, HANDOFF, DECODE, COMPUTE, WAIT, REDUCE, OPTIMIZER] as const;
export type StepPhase = (typeof STEP_PHASES)[number];
/** Every phase, including EVAL, which runs between epochs and is not part of any step. */
export const ALL_PHASES = [...STEP_PHASES, EVAL] as const;
export type Phase = (typeof ALL_PHASES)[number];

/** Index of each step phase in a per-step phase vector (Float64Array of STEP_PHASES.length). */
export const PHASE_INDEX: Readonly<Record<StepPhase, number>> =
  Object.fromEntries(STEP_PHASES.map((p, i) => [p, i])) as Record<StepPhase, number>;

/** The split a person reads first: where did the step go? */
export const GROUPS = ['load', 'communication', 'compute', 'wait', 'update'] as const;
export type PhaseGroup = (typeof GROUPS)[number];

export const GROUP_OF: Readonly<Record<StepPhase, PhaseGroup>> = {
  DATA_LOAD: 'load',
  BROADCAST: 'communication',
  ENCODE: 'communication',
  HANDOFF: 'communication',
  DECODE: 'communication',
  COMPUTE: 'compute',
  WAIT: 'wait',
  REDUCE: 'update',
  OPTIMIZER: 'update',
};

/** Sums a phase vector into the five groups. */
export function groupTotals(phases: ArrayLike<number>): Record<PhaseGroup, number> {
  const out: Record<PhaseGroup, number> = { load: 0, communication: 0, compute: 0, wait: 0, update: 0 };
  for (let i = 0; i < STEP_PHASES.length; i++) out[GROUP_OF[STEP_PHASES[i]!]] += phases[i]!;
  return out;
}
