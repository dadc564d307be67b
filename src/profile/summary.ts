/**
 * Per-phase and per-worker summaries of a profiled run (burn-in left out): total, per step,
 * share of the step, p50/p99 per phase; per rank the five groups, busy time, how often it
 * finished last, bytes; and the straggler, named when one rank is clearly slower than the rest.
 */
import { groupTotals, STEP_PHASES, type PhaseGroup, type StepPhase } from './phases.js';
import type { Profiler, StepRecord } from './profiler.js';
import { mean, median, percentile } from './stats.js';
import { rankPhases, stepConcurrency, stepPhases, stepWallMs } from './step-phases.js';

export interface PhaseRow {
  phase: StepPhase;
  totalMs: number;
  perStepMs: number;
  /** fraction of the mean step wall time */
  share: number;
  p50Ms: number;
  p99Ms: number;
}

export interface WorkerRow {
  rank: number;
  /** mean ms per step in each group, from this rank's point of view (sums to the step time) */
  groups: Record<PhaseGroup, number>;
  /** mean, median and 99th percentile ms from request handed over to reply received */
  busyMs: number;
  busyP50Ms: number;
  busyP99Ms: number;
  computeMs: number;
  /** fraction of steps in which this rank's reply arrived last */
  finishedLast: number;
  bytesSentPerStep: number;
  bytesReceivedPerStep: number;
}

export interface Straggler {
  rank: number;
  busyMs: number;
  /** median busy time of the other ranks */
  othersBusyMs: number;
  finishedLast: number;
}

export interface ProfileSummary {
  world: number;
  steps: number;
  burnIn: number;
  examplesPerStep: number;
  step: { meanMs: number; p50Ms: number; p99Ms: number };
  /** Σ phases (coordinator view) over measured steps / Σ measured wall time: 1 when the phases cover the step */
  coverage: number;
  phases: PhaseRow[];
  groups: Record<PhaseGroup, number>;
  workers: WorkerRow[];
  /** null for one worker, or when no rank is more than 10% slower than the median of the others */
  straggler: Straggler | null;
  /** mean number of ranks busy at once (1 = one after another) */
  concurrency: number;
  bytesPerStep: number;
  eval: { count: number; totalMs: number; lastAccuracy: number | null };
  /** per measured step: training loss per example, and wall time (ms) */
  losses: number[];
  walls: number[];
}

/** How much slower than the others a rank must be before it is called the straggler. */
export const STRAGGLER_MARGIN = 1.1;

export function summarize(profiler: Profiler): ProfileSummary {
  return summarizeSteps(profiler.measuredSteps(), profiler.world, profiler.burnIn, profiler.evals);
}

/**
 * With `batch`, a record that holds a round of K local-SGD steps (count ≈ K × batch) counts as K
 * steps: its times, bytes and examples are divided by K, so every figure is per step as for a run
 * that averages every step (whose records are steps: K = 1, nothing changes).
 */
export function summarizeSteps(steps: StepRecord[], world: number, burnIn: number, evals: Profiler['evals'] = [], batch?: number): ProfileSummary {
  const P = STEP_PHASES.length;
  const n = steps.length;
  const perPhase = STEP_PHASES.map(() => new Float64Array(n));
  const walls = new Float64Array(n);
  const conc = new Float64Array(n);
  const coord = new Float64Array(P);
  const tmp = new Float64Array(P);
  const rankSums = Array.from({ length: world }, () => new Float64Array(P));
  const busy = new Float64Array(world);
  const busySteps = Array.from({ length: world }, () => new Float64Array(n));
  const last = new Float64Array(world);
  const sent = new Float64Array(world);
  const received = new Float64Array(world);
  let phaseSum = 0;
  let examples = 0;
  for (let i = 0; i < n; i++) {
    const rec = steps[i]!;
    const per = batch === undefined ? 1 : 1 / Math.max(1, Math.round(rec.count / batch));
    stepPhases(rec, coord);
    for (let p = 0; p < P; p++) {
      perPhase[p]![i] = coord[p]! * per;
      phaseSum += coord[p]! * per;
    }
    walls[i] = stepWallMs(rec) * per;
    conc[i] = stepConcurrency(rec);
    examples += rec.count * per;
    let lastRank = 0;
    for (let r = 0; r < world; r++) {
      const k = rec.ranks[r]!;
      rankPhases(rec, r, tmp);
      for (let p = 0; p < P; p++) rankSums[r]![p]! += tmp[p]! * per;
      busy[r]! += (k.receivedAt - k.sentAt) * per;
      busySteps[r]![i] = (k.receivedAt - k.sentAt) * per;
      sent[r]! += k.bytesSent * per;
      received[r]! += k.bytesReceived * per;
      if (k.receivedAt > rec.ranks[lastRank]!.receivedAt) lastRank = r;
    }
    last[lastRank]! += 1;
  }
  const wallTotal = walls.reduce((a, b) => a + b, 0);
  const meanWall = n > 0 ? wallTotal / n : NaN;
  const phases: PhaseRow[] = STEP_PHASES.map((phase, p) => {
    const total = perPhase[p]!.reduce((a, b) => a + b, 0);
    return { phase, totalMs: total, perStepMs: n > 0 ? total / n : NaN, share: n > 0 ? total / n / meanWall : NaN,
      p50Ms: percentile(perPhase[p]!, 50), p99Ms: percentile(perPhase[p]!, 99) };
  });
  const workers: WorkerRow[] = rankSums.map((sums, rank) => {
    const perStep = sums.map((v) => v / n);
    return {
      rank, groups: groupTotals(perStep), busyMs: busy[rank]! / n, busyP50Ms: percentile(busySteps[rank]!, 50), busyP99Ms: percentile(busySteps[rank]!, 99), computeMs: perStep[STEP_PHASES.indexOf('COMPUTE')]!,
      finishedLast: last[rank]! / n, bytesSentPerStep: sent[rank]! / n, bytesReceivedPerStep: received[rank]! / n,
    };
  });
  const groups = groupTotals(phases.map((r) => r.perStepMs));
  const lastEval = evals.at(-1);
  return {
    world, steps: n, burnIn, examplesPerStep: n > 0 ? examples / n : 0,
    step: { meanMs: meanWall, p50Ms: median(walls), p99Ms: percentile(walls, 99) },
    coverage: wallTotal > 0 ? phaseSum / wallTotal : NaN,
    phases, groups, workers, straggler: findStraggler(workers), concurrency: mean(conc),
    bytesPerStep: workers.reduce((a, w) => a + w.bytesSentPerStep + w.bytesReceivedPerStep, 0),
    eval: { count: evals.length, totalMs: evals.reduce((a, e) => a + e.end - e.start, 0), lastAccuracy: lastEval ? lastEval.correct / lastEval.total : null },
    losses: steps.map((s) => (s.count > 0 ? s.loss / s.count : NaN)),
    walls: Array.from(walls),
  };
}

/**
 * The straggler is the rank with the largest busy time (request handed over → reply back), named
 * only when it is more than STRAGGLER_MARGIN × the median of the others: with ranks that run at
 * the same time it is the one the barrier waits for; with ranks run one after another (in-process)
 * it is still the one that would hold the others back if they ran in parallel.
 */
export function findStraggler(workers: WorkerRow[]): Straggler | null {
  if (workers.length < 2) return null;
  const slowest = workers.reduce((a, b) => (b.busyMs > a.busyMs ? b : a));
  const others = median(workers.filter((w) => w.rank !== slowest.rank).map((w) => w.busyMs));
  if (!(slowest.busyMs > STRAGGLER_MARGIN * others)) return null;
  return { rank: slowest.rank, busyMs: slowest.busyMs, othersBusyMs: others, finishedLast: slowest.finishedLast };
}

