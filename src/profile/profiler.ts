/**
 * The profiler: every step's timestamps and every rank's ShardResult timing, recorded into one
 * growable Float64Array on the coordinator's clock (performance.now(), ms). Recording copies
 * numbers only (no objects per step); phases are derived afterwards (step-phases.ts), so the
 * cost while training is a few stores. The trainer calls it only when profiling is on.
 */
import type { ShardResult } from '../shard-result.js';

/** Fields stored per step before the per-rank blocks. */
const STEP_FIELDS = 9; // step, t0, t1, t2, t3, t4, loss, count, coordCpuMs
/** Fields stored per rank. */
const RANK_FIELDS = 11; // sentAt, receivedAt, cEnc, cDec, load, compute, wDec, wEnc, bytesSent, bytesReceived, count

export interface RankRecord {
  rank: number;
  sentAt: number;
  receivedAt: number;
  /** coordinator-side encode/decode ms */
  coordEncodeMs: number;
  coordDecodeMs: number;
  /** the worker's own timing */
  loadMs: number;
  computeMs: number;
  workerDecodeMs: number;
  workerEncodeMs: number;
  bytesSent: number;
  bytesReceived: number;
  /** examples in this rank's shard */
  count: number;
}

/**
 * One step on the coordinator clock: t0 before cutting the batch, t1 when computeStep was called,
 * t2 when it returned, t3 after the rank-order reduction, t4 after the optimizer.
 */
export interface StepRecord {
  step: number;
  t0: number;
  t1: number;
  t2: number;
  t3: number;
  t4: number;
  loss: number;
  count: number;
  /**
   * CPU time (user + system, ms) of the coordinator's process while computeStep ran (t1..t2);
   * NaN when not measured. Where the workers are other processes (ws) this is the coordinator's
   * own work on the exchange — one thread, so serial over the ranks — which the cost model needs
   * and no clock shows (ws parses frames before any phase of ours starts).
   */
  coordCpuMs?: number;
  ranks: RankRecord[];
}

export interface EvalRecord {
  epoch: number;
  start: number;
  end: number;
  correct: number;
  total: number;
}

export class Profiler {
  private data: Float64Array;
  private readonly width: number;
  private n = 0;
  readonly evals: EvalRecord[] = [];
  /** performance.now() when the profiler was created: the zero of the trace */
  readonly origin = performance.now();

  /**
   * @param world number of ranks (fixed for a run)
   * @param burnIn leading steps recorded but left out of every summary figure
   * @param expectedSteps initial capacity, so a run of known length never grows the buffer
   */
  constructor(readonly world: number, readonly burnIn: number, expectedSteps = 1024) {
    if (!(Number.isInteger(world) && world >= 1)) throw new RangeError(`profiler world must be a positive integer, got ${world}`);
    if (!(Number.isInteger(burnIn) && burnIn >= 0)) throw new RangeError(`--burn-in must be a non-negative integer, got ${burnIn}`);
    this.width = STEP_FIELDS + RANK_FIELDS * world;
    this.data = new Float64Array(this.width * Math.max(16, expectedSteps));
  }

  get stepCount(): number {
    return this.n;
  }

  /** Records one step; `results` are the group's per-rank results in rank order. */
  recordStep(step: number, t0: number, t1: number, results: ShardResult[], t2: number, t3: number, t4: number, loss: number, count: number,
    coordCpuMs = NaN): void {
    if (results.length !== this.world) throw new RangeError(`profiler expected ${this.world} ranks, got ${results.length}`);
    if ((this.n + 1) * this.width > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    const d = this.data;
    let o = this.n * this.width;
    d[o++] = step; d[o++] = t0; d[o++] = t1; d[o++] = t2; d[o++] = t3; d[o++] = t4; d[o++] = loss; d[o++] = count; d[o++] = coordCpuMs;
    for (let r = 0; r < results.length; r++) {
      const s = results[r]!;
      const w = s.timing;
      d[o++] = s.sentAt; d[o++] = s.receivedAt; d[o++] = s.encodeMs; d[o++] = s.decodeMs;
      d[o++] = w.loadMs; d[o++] = w.computeMs; d[o++] = w.decodeMs; d[o++] = w.encodeMs;
      d[o++] = s.bytesSent; d[o++] = s.bytesReceived; d[o++] = s.count;
    }
    this.n++;
  }

  recordEval(epoch: number, start: number, end: number, correct: number, total: number): void {
    this.evals.push({ epoch, start, end, correct, total });
  }

  /** The recorded steps as objects (built on demand, after the run). */
  steps(): StepRecord[] {
    const out: StepRecord[] = [];
    const d = this.data;
    for (let i = 0; i < this.n; i++) {
      let o = i * this.width;
      const rec: StepRecord = { step: d[o]!, t0: d[o + 1]!, t1: d[o + 2]!, t2: d[o + 3]!, t3: d[o + 4]!, t4: d[o + 5]!, loss: d[o + 6]!, count: d[o + 7]!, coordCpuMs: d[o + 8]!, ranks: [] };
      o += STEP_FIELDS;
      for (let r = 0; r < this.world; r++, o += RANK_FIELDS) {
        rec.ranks.push({
          rank: r, sentAt: d[o]!, receivedAt: d[o + 1]!, coordEncodeMs: d[o + 2]!, coordDecodeMs: d[o + 3]!,
          loadMs: d[o + 4]!, computeMs: d[o + 5]!, workerDecodeMs: d[o + 6]!, workerEncodeMs: d[o + 7]!, bytesSent: d[o + 8]!, bytesReceived: d[o + 9]!, count: d[o + 10]!,
        });
      }
      out.push(rec);
    }
    return out;
  }

  /** The steps that count: all but the burn-in. */
  measuredSteps(): StepRecord[] {
    return this.steps().slice(this.burnIn);
  }
}
