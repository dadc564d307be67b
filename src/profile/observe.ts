/**
 * What the cost model learns from one measured configuration ("cell"): the mean step time and,
 * per rank, its compute, the coordinator's serial work for it, the rest of its round trip, and
 * its bytes — medians over the measured (post burn-in) steps, because the machine is shared and
 * a neighbour's burst should not move the fit (bytes and concurrency: means).
 */
import type { StepRecord } from './profiler.js';
import { mean, median } from './stats.js';
import { stepConcurrency, stepWallMs } from './step-phases.js';

export interface NetShape {
  sizes: number[];
  /** weights + biases */
  params: number;
  /** multiply-adds of one example's forward pass, Σ n_in × n_out */
  macs: number;
}

export function netShape(sizes: number[]): NetShape {
  let params = 0;
  let macs = 0;
  for (let l = 1; l < sizes.length; l++) {
    macs += sizes[l - 1]! * sizes[l]!;
    params += sizes[l - 1]! * sizes[l]! + sizes[l]!;
  }
  return { sizes, params, macs };
}

export interface RankObservation {
  /** examples in the shard */
  shard: number;
  /** worker gathering + forward/backward, ms */
  computeMs: number;
  /** coordinator encode + decode for this rank, ms (serial on the coordinator) */
  coordMs: number;
  /** the round trip less the worker's load and compute and the coordinator's encode/decode: the HANDOFF phase plus the worker's own decode/encode, ms */
  handoffMs: number;
  /** bytes sent + received */
  bytes: number;
}

export interface CellObservation {
  transport: string;
  workers: number;
  batch: number;
  net: NetShape;
  /** steps per profiler record: 1, or about K for a run averaging every K steps (its records are rounds) */
  stepsPerRecord: number;
  /** wall time per step (a round's divided by its steps) */
  stepMs: number;
  /** mean number of ranks busy at once */
  concurrency: number;
  reduceMs: number;
  optimizerMs: number;
  /**
   * The coordinator's CPU time (ms, user + system) per step while the ranks' exchange ran, where
   * the workers are other processes (NaN elsewhere, or not measured): its own share of the
   * round trips — one thread, so it adds up over the ranks instead of overlapping.
   */
  coordCpuMs: number;
  ranks: RankObservation[];
}

export function observeCell(transport: string, batch: number, net: NetShape, steps: StepRecord[]): CellObservation {
  if (steps.length === 0) throw new RangeError('a measured configuration needs at least one measured step (steps > burn-in)');
  // a run that averages every K > 1 steps records a round of K steps as one record (count: all its
  // examples): every figure here is per step, so a record's times, bytes and examples are divided
  // by the steps it covers (1 for every record of a run that averages every step)
  const k = steps.map((s) => Math.max(1, Math.round(s.count / batch)));
  const perStep = (values: number[]) => values.map((v, i) => v / k[i]!);
  const world = steps[0]!.ranks.length;
  const ranks: RankObservation[] = [];
  for (let r = 0; r < world; r++) {
    const ks = steps.map((s) => s.ranks[r]!);
    ranks.push({
      shard: mean(perStep(ks.map((k) => k.count))),
      computeMs: median(perStep(ks.map((k) => k.loadMs + k.computeMs))),
      coordMs: median(perStep(ks.map((k) => k.coordEncodeMs + k.coordDecodeMs))),
      handoffMs: median(perStep(ks.map((k) => Math.max(0, k.receivedAt - k.sentAt - k.loadMs - k.computeMs - k.coordEncodeMs - k.coordDecodeMs)))),
      bytes: mean(perStep(ks.map((k) => k.bytesSent + k.bytesReceived))),
    });
  }
  return {
    transport, workers: world, batch, net,
    stepsPerRecord: mean(k),
    stepMs: median(perStep(steps.map(stepWallMs))),
    concurrency: mean(steps.map(stepConcurrency)),
    reduceMs: median(perStep(steps.map((s) => s.t3 - s.t2))),
    optimizerMs: median(perStep(steps.map((s) => s.t4 - s.t3))),
    // measured only where the workers are other processes (profiledTrainStep); NaN elsewhere
    coordCpuMs: median(perStep(steps.map((s) => s.coordCpuMs ?? NaN))),
    ranks,
  };
}
