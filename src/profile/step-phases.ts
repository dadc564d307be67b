/**
 * How one recorded step becomes phase durations, seen from each rank. For rank r the step wall
 * time t4 − t0 is cut, without gap or overlap, into:
 *   DATA_LOAD  the coordinator cutting the batch (t1 − t0) + the worker gathering its shard
 *   BROADCAST  computeStep called → first request handed to the transport (parameters published)
 *   WAIT       idle: before r's request was handed over (the coordinator was busy with other
 *              ranks) and after r's reply arrived until the slowest rank's did (the barrier)
 *   ENCODE, DECODE  coordinator + worker serialisation
 *   COMPUTE    the worker's forward+backward
 *   HANDOFF    the rest of r's round trip: handing the request over and the reply back (ws: the
 *              socket and the network; threads: shared-memory signalling and the wake-up), copies (round trip − everything the
 *              two sides timed themselves; clamped at 0)
 *   REDUCE, OPTIMIZER  the coordinator after computeStep returned.
 * The coordinator's view of a step is the mean over ranks, so it too sums to the wall time.
 */
import { PHASE_INDEX as I, STEP_PHASES } from './phases.js';
import type { RankRecord, StepRecord } from './profiler.js';

/** Writes rank r's phase durations (ms) for one step into out (length STEP_PHASES.length). */
export function rankPhases(rec: StepRecord, r: number, out: Float64Array): Float64Array {
  let firstSent = Infinity;
  for (const k of rec.ranks) firstSent = Math.min(firstSent, k.sentAt);
  const k = rec.ranks[r]!;
  out.fill(0);
  out[I.DATA_LOAD] = rec.t1 - rec.t0 + k.loadMs;
  out[I.BROADCAST] = Math.max(0, firstSent - rec.t1);
  out[I.WAIT] = Math.max(0, k.sentAt - firstSent) + Math.max(0, rec.t2 - k.receivedAt);
  out[I.ENCODE] = k.coordEncodeMs + k.workerEncodeMs;
  out[I.DECODE] = k.coordDecodeMs + k.workerDecodeMs;
  out[I.COMPUTE] = k.computeMs;
  out[I.HANDOFF] = untimedMs(k);
  out[I.REDUCE] = rec.t3 - rec.t2;
  out[I.OPTIMIZER] = rec.t4 - rec.t3;
  return out;
}

/**
 * The untimed rest of a rank's round trip (HANDOFF): the socket or the shared-memory signal, wake-ups, copies — the round trip less
 * everything the coordinator and the worker timed themselves, clamped at 0 (a group that reported
 * more worker time than the round trip).
 */
export function untimedMs(k: RankRecord): number {
  const timed = k.loadMs + k.computeMs + k.workerDecodeMs + k.workerEncodeMs + k.coordEncodeMs + k.coordDecodeMs;
  return Math.max(0, k.receivedAt - k.sentAt - timed);
}

/** The coordinator's view: the mean over ranks of rankPhases. */
export function stepPhases(rec: StepRecord, out = new Float64Array(STEP_PHASES.length)): Float64Array {
  const tmp = new Float64Array(STEP_PHASES.length);
  out.fill(0);
  for (let r = 0; r < rec.ranks.length; r++) {
    rankPhases(rec, r, tmp);
    for (let i = 0; i < tmp.length; i++) out[i]! += tmp[i]! / rec.ranks.length;
  }
  return out;
}

/** Measured wall time of the step (ms). */
export const stepWallMs = (rec: StepRecord): number => rec.t4 - rec.t0;

/**
 * How many ranks computed at the same time: Σ round trips / the span from the first send to the
 * last reply. 1 for ranks run one after another (in-process), up to the world size when they
 * truly overlap.
 */
export function stepConcurrency(rec: StepRecord): number {
  let first = Infinity;
  let last = -Infinity;
  let busy = 0;
  for (const k of rec.ranks) {
    first = Math.min(first, k.sentAt);
    last = Math.max(last, k.receivedAt);
    busy += k.receivedAt - k.sentAt;
  }
  return last > first ? busy / (last - first) : 1;
}
