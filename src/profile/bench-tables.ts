/**
 * The text `dpt bench` prints: first the answer (per net, a narrow table and one sentence of
 * advice), then the detail: the measured grid (samples/s, step split, speedup, efficiency,
 * bytes), the fitted cost model, its check against the multi-worker cells, the what-if
 * predictions and the verdict.
 */
import { netKey, type WhatIfRow } from './analysis.js';
import { answerLegend, answerTable } from './answer.js';
import { emulatedHostsLine } from './emulated.js';
import { fmtBytes, fmtInt, fmtMs, fmtPct, fmtRate, fmtX, textTable } from './format.js';
import type { LockstepTable } from './model.js';
import type { BenchOutcome } from './outcome.js';
import { cellName } from './verdict.js';
import type { WhatIf } from './what-if.js';

export function benchTables(o: BenchOutcome): string[] {
  const out: string[] = [];
  const p = o.plan;
  out.push(`dpt bench: ${o.machine.cores} cores (${o.machine.cpu}), Node ${o.machine.node}, ${o.machine.kernels} kernels; ` +
    (p.targetAccuracy !== null ? `until ${fmtPct(p.targetAccuracy, 1)} test accuracy (at most ${p.maxEpochs} epochs) with each of seeds ${p.seeds.join(',')}, timed from the first step through each epoch's evaluation; ` +
      `with 3 or more seeds at the target the fastest and slowest are dropped and the rest averaged` : p.epochs === null ? `${p.steps} measured steps per configuration (${p.repeats} interleaved repetitions, each after ${p.burnIn} burn-in steps)` : `${p.epochs} epochs per configuration (first ${p.burnIn} steps left out of the timings)`) +
    `; every configuration from the same initial parameters and data order (${p.targetAccuracy !== null ? 'per seed' : `seed ${p.seed}`}), eta ${p.eta}, back to back in this run. ` +
    `Load average ${o.machine.load[0].toFixed(1)} at the start, ${o.machine.load[1].toFixed(1)} at the end${Math.max(...o.machine.load) > o.machine.cores - 0.5 ? ' (the machine was shared: expect noise)' : ''}.`);
  if (o.machine.emulated) out.push(emulatedHostsLine(o.machine.emulated));
  out.push('', 'Answer', ...answerLegend(o.plan.targetAccuracy));
  // the "pays off" column is words: left-aligned
  for (const a of o.answer) out.push('', a.net, ...textTable(answerTable(a), [4]), a.advice);
  out.push('', 'Detail', 'Speedup, efficiency and samples/s use the median step (p50) against the single-node baseline (inproc x1) at the same net and batch; the parts load..update are mean ms per step (mean over ranks) and add up to the mean step.');
  for (const net of [...new Set(o.cells.map((c) => netKey(c.net)))]) {
    const cells = o.cells.filter((c) => netKey(c.net) === net);
    const acc = p.epochs === null ? `acc@${cells[0]!.evalImages}` : 'accuracy';
    out.push('', `${net} (${fmtInt(cells[0]!.net.params)} parameters)`);
    out.push(...textTable([
      ['config', 'batch', 'samples/s', 'step p50', 'mean', 'load', 'comm', 'compute', 'wait', 'update', 'speedup', 'effic.', 'bytes/step', acc, ...(p.epochs !== null ? ['train s'] : [])],
      ...cells.map((c) => {
        const g = c.summary.groups;
        return [cellName(c), String(c.batch), fmtInt(c.samplesPerSecond), fmtMs(c.observation.stepMs), fmtMs(c.summary.step.meanMs),
          fmtMs(g.load), fmtMs(g.communication), fmtMs(g.compute), fmtMs(g.wait), fmtMs(g.update),
          fmtX(c.speedup), fmtPct(c.efficiency, 0), fmtBytes(c.summary.bytesPerStep), fmtPct(c.accuracy, 2),
          ...(p.epochs !== null ? [c.trainSeconds.toFixed(1)] : [])];
      }),
    ]));
  }
  out.push('', ...modelTable(o));
  if (o.validation && o.validation.length > 0) {
    out.push('', 'Model check: fitted on the 1-worker configurations only, predicting the multi-worker ones');
    out.push(...textTable([
      ['config', 'net', 'batch', 'measured step', 'predicted step', 'measured speedup', 'predicted speedup', 'error'],
      ...o.validation.map((r) => [cellName(r.cell), netKey(r.cell.net), String(r.cell.batch), fmtMs(r.cell.stepMs), fmtMs(r.predictedMs),
        fmtX(r.measuredSpeedup), fmtX(r.predictedSpeedup), `${r.error >= 0 ? '+' : ''}${fmtPct(r.error, 1)}`]),
    ]));
  }
  if (o.whatIf) out.push('', ...whatIfLines(o));
  out.push('', ...o.verdict);
  return out;
}

/** The what-if table, led by the line that says what it assumes and followed, with --target-accuracy, by how its times are made. */
export function whatIfLines(o: Pick<BenchOutcome, 'whatIf' | 'whatIfSpec' | 'plan'> & { machine?: BenchOutcome['machine'] }): string[] {
  const rows = o.whatIf ?? [];
  const n = rows[0]?.network;
  const target = o.plan.targetAccuracy;
  const toTarget = target === null ? [] : [`to ${fmtPct(target, 1)}`];
  const cpu = o.whatIfSpec?.cpu ?? null;
  const hosts = cpu === null ? '' : `${n ? ',' : ''} every host with ${cpu} of one of this machine's cores`;
  const one = cpu === null ? (o.machine?.emulated ? 'one emulated host' : 'one node of this machine') : `one such host`;
  const out = [`What if${n ? ` each worker sat on its own machine across a network of ${fmtMs(n.latencyMs)} one-way latency and ${fmtRate(n.bandwidthBitsPerS)}` : ''}${hosts}` +
    `: predicted by the model with ${whatIfSettings(o.whatIfSpec, rows, o.plan.momentum)}; baseline = ${one}, no network`];
  out.push(...textTable([
    ['config', 'cores', 'net', 'batch', 'step', 'compute', 'comm', 'update', 'bytes/rank', 'samples/s', 'epoch', ...toTarget, 'one node', 'speedup', 'assumes'],
    ...rows.map((r) => [cellName(r), String(r.cores), netKey(r.net), String(r.batch), fmtMs(r.prediction.stepMs), fmtMs(r.prediction.computeMs),
      fmtMs(r.prediction.communicationMs), fmtMs(r.prediction.updateMs), fmtBytes(r.prediction.bytesPerRank), fmtInt(r.samplesPerSecond), fmtMs(r.epochSeconds * 1000),
      ...(target === null ? [] : [r.timeToAccuracy === null ? '–' : fmtMs(r.timeToAccuracy.seconds * 1000)]),
      fmtMs(r.baselineMs), fmtX(r.speedup), r.prediction.assumptions.join('; ') || '–']),
  ]));
  if (target !== null) out.push(timeToTargetNote(target, rows));
  return out;
}

/** Which K and wire format the what-if assumes, in words: "average-every=16 (local SGD: one exchange per 16 steps) and wire=bf16". */
export function whatIfSettings(w: WhatIf | null, rows: WhatIfRow[], momentum: number): string {
  const K = w?.averageEvery ?? 1;
  const every = K === 1 ? 'average-every=1 (an exchange every step, as measured)'
    : `average-every=${K} (local SGD: one exchange per ${K} steps${momentum > 0 ? `, each rank's momentum velocity travelling with it in fp32` : ''})`;
  const wired = [...new Set(rows.filter((r) => r.wire !== null).map((r) => r.transport))];
  if (wired.length === 0) return `${every}, nothing on a wire (shared memory)`;
  const where = wired.length < new Set(rows.map((r) => r.transport)).size ? ` on ${wired.join(', ')} (the others move nothing over a wire)` : '';
  return `${every} and wire=${w?.wire ?? 'fp32'}${w?.wire ? '' : ' (as measured)'}${where}`;
}

/** How a what-if's time to the target is made, and what it takes from the measurements. */
function timeToTargetNote(target: number, rows: WhatIfRow[]): string {
  const pct = fmtPct(target, 1);
  const K = Math.max(1, ...rows.map((r) => r.averageEvery));
  const half = rows.some((r) => r.wire !== null && r.wire !== 'fp32');
  const changed = [...(K > 1 ? [`local SGD (average-every=${K})`] : []), ...(half ? ['a 16-bit wire'] : [])];
  return `to ${pct}: measured epochs to ${pct} × predicted epoch time (the epochs: one node's mean over its seeds at that batch, as the MLPerf mean takes them; ` +
    `the time: training steps only, evaluations left out)` +
    (changed.length > 0 ? `. The epochs were measured averaging every step in fp32; with ${changed.join(' and ')} the optimisation differs, and the epochs may too.` : '') +
    (rows.some((r) => r.timeToAccuracy === null) ? ` –: no seed reached ${pct} at that batch, or it was not run.` : '');
}

function modelTable(o: BenchOutcome): string[] {
  const m = o.model;
  const rows = Object.values(m.transports).map((t) => [
    t.transport, `${t.computeFactor.toFixed(2)}x`,
    fmtMs(t.coordPerRankMs + t.handoffPerRankMs), `${((t.coordPerByteMs + t.handoffPerByteMs) * 1e6).toPrecision(3)} ns`,
    `${fmtInt(t.bytesFixed)} + ${t.bytesPerParam.toPrecision(3)}/param + ${t.bytesPerExample.toPrecision(3)}/example`,
    fmtMs(t.overheadMs), t.concurrent === null ? 'not seen' : t.concurrent ? 'yes' : 'no (one after another)', fmtMs(t.rmsMs),
  ]);
  return [
    `Cost model (non-negative least squares over all ${o.cells.length} measured configurations; docs/profiling.md): optimizer ${fmtMs(m.optimizerFixedMs)} + ${(m.optimizerPerParamMs * 1e6).toPrecision(3)} ns/parameter, ` +
    `reduce ${(m.reducePerFloatMs * 1e6).toPrecision(3)} ns/float per worker (${m.reduceSource}), ${m.cores} cores (more workers take turns on them)`,
    ...Object.entries(m.lockstep).map(([net, table]) => `Lockstep probe, ${net} (ms per step, ranks computing their shards at once, nothing exchanged): ${describeTable(table)}`),
    ...textTable([['transport', 'compute × probe', 'per rank', 'per byte', 'bytes per rank', 'fixed/step', 'ranks overlap', 'fit rms'], ...rows]),
    ...serialLines(o),
  ];
}

/** σ, the coordinator's own CPU in one rank's exchange, where it was measured (workers in other processes). */
function serialLines(o: BenchOutcome): string[] {
  const parts = Object.values(o.model.transports).filter((t) => t.serialPerRankMs !== null).map((t) => {
    const sizes = o.cells.filter((c) => c.transport === t.transport && c.workers === 1).map((c) => c.observation.ranks[0]?.bytes ?? 0);
    const at = [...new Set(sizes.sort((a, b) => a - b).map((b) => `${fmtMs(t.serialPerRankMs! + t.serialPerByteMs * b)} at ${fmtBytes(b)}`))];
    return `${t.transport} ${at.join(', ')}`;
  });
  if (parts.length === 0) return [];
  return [`The coordinator's own CPU per rank in the exchange beyond its timed encode/decode (one thread: adds up over the ranks; the rest of a round trip overlaps): ${parts.join('; ')}`];
}

/** "1 rank: 64 ex 301 µs, 128 ex 530 µs; 2 ranks at once: 64 ex 330 µs" */
export function describeTable(table: LockstepTable): string {
  return Object.entries(table).map(([k, bySize]) => `${k === '1' ? '1 rank' : `${k} ranks at once`}: ` +
    Object.entries(bySize).map(([n, ms]) => `${n} ex ${fmtMs(ms)}`).join(', ')).join('; ');
}

