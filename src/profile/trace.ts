/**
 * Chrome trace-event JSON (opens in Perfetto and chrome://tracing): one track for the coordinator
 * and one per worker, complete ("X") events in µs since the profiler was created. A worker's
 * track lays its round trip out as ENCODE → HANDOFF → DECODE → DATA_LOAD → COMPUTE →
 * ENCODE → HANDOFF → DECODE with the measured durations (the two HANDOFF halves split the untimed rest
 * of the round trip), WAIT before and after, so every phase of step-phases.ts has an event.
 */
import { writeFileSync } from 'node:fs';
import type { Profiler, StepRecord } from './profiler.js';
import { untimedMs } from './step-phases.js';

export interface TraceEvent {
  name: string;
  ph: 'X' | 'M' | 'C';
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  cat?: string;
  args?: Record<string, unknown>;
}

/** Steps beyond this are left out of the trace (a 30-epoch run at batch 10 has 150,000). */
export const MAX_TRACE_STEPS = 5000;

const PID = 1;
const COORDINATOR_TID = 0;

export function traceEvents(profiler: Profiler, maxSteps = MAX_TRACE_STEPS): TraceEvent[] {
  const t0 = profiler.origin;
  const us = (ms: number): number => Math.round((ms - t0) * 1000 * 1000) / 1000;
  const ev: TraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: PID, tid: COORDINATOR_TID, ts: 0, args: { name: 'dpt training' } },
    { name: 'thread_name', ph: 'M', pid: PID, tid: COORDINATOR_TID, ts: 0, args: { name: 'coordinator' } },
  ];
  for (let r = 0; r < profiler.world; r++) ev.push({ name: 'thread_name', ph: 'M', pid: PID, tid: r + 1, ts: 0, args: { name: `worker ${r}` } });
  const span = (name: string, tid: number, start: number, durMs: number, args?: Record<string, unknown>): void => {
    ev.push({ name, cat: 'step', ph: 'X', pid: PID, tid, ts: us(start), dur: Math.max(0, Math.round(durMs * 1e6) / 1000), ...(args ? { args } : {}) });
  };
  const steps = profiler.steps().slice(0, maxSteps);
  for (const [i, rec] of steps.entries()) {
    const burnIn = i < profiler.burnIn; // by position: a resumed run's step numbers do not start at 0
    const args = { step: rec.step, burnIn };
    span(`step ${rec.step}`, COORDINATOR_TID, rec.t0, rec.t4 - rec.t0, { ...args, examples: rec.count, loss: rec.count > 0 ? rec.loss / rec.count : null });
    span('DATA_LOAD', COORDINATOR_TID, rec.t0, rec.t1 - rec.t0, args);
    const firstSent = Math.min(...rec.ranks.map((k) => k.sentAt));
    span('BROADCAST', COORDINATOR_TID, rec.t1, Math.max(0, firstSent - rec.t1), args);
    span('REDUCE', COORDINATOR_TID, rec.t2, rec.t3 - rec.t2, args);
    span('OPTIMIZER', COORDINATOR_TID, rec.t3, rec.t4 - rec.t3, args);
    for (const k of rec.ranks) workerSpans(rec, k.rank, firstSent, span, args);
    ev.push({ name: 'bytes', ph: 'C', pid: PID, tid: COORDINATOR_TID, ts: us(rec.t0),
      args: { sent: rec.ranks.reduce((a, k) => a + k.bytesSent, 0), received: rec.ranks.reduce((a, k) => a + k.bytesReceived, 0) } });
  }
  for (const e of profiler.evals) span('EVAL', COORDINATOR_TID, e.start, e.end - e.start, { epoch: e.epoch, correct: e.correct, total: e.total });
  return ev;
}

function workerSpans(rec: StepRecord, r: number, firstSent: number,
  span: (name: string, tid: number, start: number, durMs: number, args?: Record<string, unknown>) => void, args: Record<string, unknown>): void {
  const k = rec.ranks[r]!;
  const tid = r + 1;
  const handoff = untimedMs(k) / 2;
  span('WAIT', tid, firstSent, Math.max(0, k.sentAt - firstSent), { ...args, why: 'request not yet handed over' });
  let t = k.sentAt;
  for (const [name, d] of [['ENCODE', k.coordEncodeMs], ['HANDOFF', handoff], ['DECODE', k.workerDecodeMs],
    ['DATA_LOAD', k.loadMs], ['COMPUTE', k.computeMs], ['ENCODE', k.workerEncodeMs], ['HANDOFF', handoff], ['DECODE', k.coordDecodeMs]] as const) {
    span(name, tid, t, d, { ...args, bytesSent: k.bytesSent, bytesReceived: k.bytesReceived });
    t += d;
  }
  span('WAIT', tid, k.receivedAt, Math.max(0, rec.t2 - k.receivedAt), { ...args, why: 'barrier: waiting for the slowest rank' });
}

/** Writes the trace as JSON ({ traceEvents, displayTimeUnit }) to file. */
export function writeTrace(file: string, profiler: Profiler): number {
  const events = traceEvents(profiler);
  writeFileSync(file, JSON.stringify({ traceEvents: events, displayTimeUnit: 'ms', otherData: { tool: 'dpt', burnInSteps: profiler.burnIn } }));
  return events.length;
}
