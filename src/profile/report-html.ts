/**
 * The self-contained HTML report of a bench (inline CSS and SVG, nothing fetched): first the
 * answer (per net, a table and one sentence of advice), then the verdict, the measured tables,
 * the step breakdown per configuration, speedup against workers beside the ideal line and the
 * model's prediction, the model check, and the loss / accuracy curves.
 */
import { isBaseline, netKey } from './analysis.js';
import { answerLegend, answerTable } from './answer.js';
import { whatIfSettings } from './bench-tables.js';
import { emulatedHostsLine } from './emulated.js';
import { fmtBytes, fmtInt, fmtMs, fmtPct, fmtRate, fmtX } from './format.js';
import { predictStep } from './model.js';
import type { BenchCell, BenchOutcome } from './outcome.js';
import { GROUPS } from './phases.js';
import { esc, lineChart, smooth, stackedBars, type Series } from './svg.js';
import { cellName } from './verdict.js';

const GROUP_COLORS = ['#8c6bb1', '#e6550d', '#31a354', '#bdbdbd', '#3182bd'];
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

export function reportHtml(o: BenchOutcome): string {
  const body: string[] = [];
  const p = o.plan;
  body.push(`<h1>Does parallelism pay off?</h1>`,
    `<p class="meta">${o.machine.cores} cores (${esc(o.machine.cpu)}), Node ${esc(o.machine.node)}, ${esc(o.machine.kernels)} kernels; ` +
    `${p.targetAccuracy !== null ? `until ${esc(fmtPct(p.targetAccuracy, 1))} test accuracy (at most ${p.maxEpochs} epochs), seeds ${p.seeds.join(', ')}` : p.epochs === null ? `${p.steps} measured steps per configuration (${p.repeats} interleaved repetitions, each after ${p.burnIn} burn-in steps)` : `${p.epochs} epochs per configuration`}; ` +
    `same initial parameters and data order (${p.targetAccuracy !== null ? 'per seed' : `seed ${p.seed}`}), eta ${p.eta}; all measured back to back in one run; ` +
    `load average ${o.machine.load[0].toFixed(1)} → ${o.machine.load[1].toFixed(1)}.</p>`,
    ...(o.machine.emulated ? [`<p class="meta">${esc(emulatedHostsLine(o.machine.emulated))}</p>`] : []),
    ...answerHtml(o), `<h2>Verdict in detail</h2>`, verdictHtml(o.verdict));
  const groups = new Map<string, BenchCell[]>();
  for (const c of o.cells) groups.set(`${netKey(c.net)}|${c.batch}`, [...(groups.get(`${netKey(c.net)}|${c.batch}`) ?? []), c]);
  body.push(`<h2>Measured</h2>`, ...measuredTables(o));
  body.push(`<h2>Where the step goes</h2><p>Mean ms per step, averaged over the ranks (each rank's view adds up to the step time). Speedups use the median step.</p>`);
  for (const cells of groups.values()) {
    body.push(`<h3>${esc(netKey(cells[0]!.net))}, batch ${cells[0]!.batch}</h3>`, stackedBars(cells.map((c) => ({
      label: cellName(c), parts: GROUPS.map((g) => c.summary.groups[g]), note: `${fmtMs(c.summary.step.meanMs)} mean · ${fmtX(c.speedup)}`,
    })), GROUPS, GROUP_COLORS, 'ms per step'));
  }
  body.push(`<h2>Speedup against workers</h2><p>Solid: measured. Dashed: the cost model (fitted on every measured configuration). Grey: ideal linear speedup. ` +
    `This machine has ${o.machine.cores} cores; the model caps usable parallelism there.</p><div class="row">`);
  for (const cells of groups.values()) body.push(`<figure>${speedupChart(o, cells)}<figcaption>${esc(netKey(cells[0]!.net))}, batch ${cells[0]!.batch}</figcaption></figure>`);
  body.push('</div>', validationHtml(o), whatIfHtml(o));
  const window = Math.max(1, Math.round(Math.max(...o.cells.map((c) => c.losses.length)) / 10));
  body.push(`<h2>Training curves</h2><p>Training loss per example against training time (measured steps; moving average over ${window} steps): ` +
    `the configurations of a batch size that average every step compute the same SGD steps, so their curves have the same shape and differ only in how fast they are walked; those averaging every K steps (K=…) train differently.</p><div class="row">`);
  for (const cells of groups.values()) {
    const series: Series[] = cells.map((c, i) => {
      let t = 0;
      const losses = smooth(c.losses, window);
      return { name: cellName(c), color: PALETTE[i % PALETTE.length]!, points: losses.map((l, k) => [(t += c.summary.walls[k]!) / 1000, l] as [number, number]) };
    });
    body.push(`<figure>${lineChart(series, { xLabel: 'training time (s, measured steps)', yLabel: 'loss per example' })}<figcaption>${esc(netKey(cells[0]!.net))}, batch ${cells[0]!.batch}</figcaption></figure>`);
  }
  body.push('</div>');
  if (p.epochs !== null || p.targetAccuracy !== null) {
    body.push(p.targetAccuracy === null ? `<h2>Accuracy against time</h2><div class="row">`
      : `<h2>Time to accuracy</h2><p>Test accuracy after each epoch against wall-clock seconds from the first step (evaluations included), ` +
        `seed ${p.seeds[0]} of each configuration, until it reached ${esc(fmtPct(p.targetAccuracy, 1))}; the answer's times are the means over seeds ${p.seeds.join(', ')}.</p><div class="row">`);
    for (const cells of groups.values()) {
      const series: Series[] = cells.map((c, i) => ({ name: cellName(c), color: PALETTE[i % PALETTE.length]!, markers: true, points: c.epochs.map((e) => [e.seconds, 100 * e.accuracy] as [number, number]) }));
      body.push(`<figure>${lineChart(series, { xLabel: 'training time (s)', yLabel: 'test accuracy (%)' })}<figcaption>${esc(netKey(cells[0]!.net))}, batch ${cells[0]!.batch}</figcaption></figure>`);
    }
    body.push('</div>');
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>dpt bench report</title><style>${CSS}</style></head><body>${body.join('\n')}</body></html>\n`;
}

// Tables keep their figures on one line and only a text column (class "text") wraps: with one
// measured table per net, every table fits the 1200 px body.
const CSS = `body{font-family:sans-serif;margin:24px;max-width:1200px;color:#222}h1{margin-bottom:4px}.meta{color:#555}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}td:first-child,th:first-child{text-align:left}
td.words,th.words{text-align:left}td.text,th.text{white-space:normal;text-align:left;min-width:16em}
.legend{color:#555;font-size:13px}.advice{font-size:17px;font-weight:bold;background:#eef6ee;border-left:4px solid #31a354;padding:8px 16px}
.verdict{background:#f6f8fa;border-left:4px solid #3182bd;padding:8px 16px}.verdict p{margin:6px 0}.verdict .sub{margin-left:18px;color:#333}
.row{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}figcaption{text-align:center;font-size:13px;color:#555}`;

function verdictHtml(lines: string[]): string {
  const paragraphs = lines.slice(1).filter((l) => l.trim() !== '')
    .map((l) => `<p${l.startsWith('  ') ? ' class="sub"' : ''}>${esc(l).replace(/(PAYS OFF|does NOT pay off|BREAK-EVEN)/, '<strong>$1</strong>')}</p>`);
  return `<div class="verdict">${paragraphs.join('')}</div>`;
}

/** Per net: its table (the first column, the configuration, stays left-aligned) and the advice. */
function answerHtml(o: BenchOutcome): string[] {
  const out = [`<h2 id="answer">Answer</h2>`, `<p class="legend">${answerLegend(o.plan.targetAccuracy).map(esc).join('<br>')}</p>`];
  for (const a of o.answer) {
    const [head, ...rows] = answerTable(a);
    out.push(`<h3>${esc(a.net)}</h3>`, table(head!, rows, { words: [4] }), `<p class="advice">${esc(a.advice)}</p>`);
  }
  return out;
}

/** One table per net, so that no column repeats the net and the table stays inside the page. */
function measuredTables(o: BenchOutcome): string[] {
  const head = ['config', 'batch', 'samples/s', 'step p50', 'mean', 'p99', 'load', 'comm', 'compute', 'wait', 'update', 'speedup', 'efficiency', 'bytes/step', 'accuracy'];
  return [...new Set(o.cells.map((c) => netKey(c.net)))].flatMap((net) => {
    const cells = o.cells.filter((c) => netKey(c.net) === net);
    const rows = cells.map((c) => [cellName(c), String(c.batch), fmtInt(c.samplesPerSecond), fmtMs(c.observation.stepMs),
      fmtMs(c.summary.step.meanMs), fmtMs(c.summary.step.p99Ms), ...GROUPS.map((g) => fmtMs(c.summary.groups[g])), fmtX(c.speedup), fmtPct(c.efficiency, 0), fmtBytes(c.summary.bytesPerStep), fmtPct(c.accuracy, 2)]);
    return [`<h3>${esc(net)} (${fmtInt(cells[0]!.net.params)} parameters)</h3>`, table(head, rows)];
  });
}

/**
 * Figures stay on one line, right-aligned; `words` columns are left-aligned, and `text` columns
 * (sentences, like what a prediction assumes) wrap instead of widening the table past the page.
 */
function table(head: string[], rows: string[][], cols: { words?: number[]; text?: number[] } = {}): string {
  const cls = (i: number): string => (cols.text?.includes(i) ? ' class="text"' : cols.words?.includes(i) ? ' class="words"' : '');
  return `<table><tr>${head.map((h, i) => `<th${cls(i)}>${esc(h)}</th>`).join('')}</tr>` +
    `${rows.map((r) => `<tr>${r.map((v, i) => `<td${cls(i)}>${esc(v)}</td>`).join('')}</tr>`).join('')}</table>`;
}

function speedupChart(o: BenchOutcome, cells: BenchCell[]): string {
  const base = cells.find(isBaseline)!;
  const maxW = Math.max(4, ...cells.map((c) => c.workers));
  const ws = Array.from({ length: maxW }, (_, i) => i + 1);
  const series: Series[] = [{ name: 'ideal', color: '#aaa', points: ws.map((w) => [w, w]) }];
  const transports = [...new Set(cells.map((c) => c.transport))];
  let extraColors = 0;
  transports.forEach((t, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    // one measured line per K (local SGD): a line across K would join different optimisations
    for (const k of [...new Set(cells.filter((c) => c.transport === t).map((c) => c.averageEvery))]) {
      const measured = cells.filter((c) => c.transport === t && c.averageEvery === k).sort((a, b) => a.workers - b.workers);
      // K = 1 in the transport's colour, beside its model line; each K > 1 in a colour after the transports'
      const kColor = k === 1 ? color : PALETTE[(transports.length + extraColors++) % PALETTE.length]!;
      series.push({ name: `${t}${k > 1 ? ` K=${k}` : ''} measured`, color: kColor, markers: true, points: measured.map((c) => [c.workers, c.speedup]) });
    }
    const modelBase = predictStep(o.model, { transport: 'inproc', workers: 1, batch: base.batch, net: base.net }).stepMs;
    series.push({ name: `${t} model`, color, dashed: true, points: ws.map((w) => [w, modelBase / predictStep(o.model, { transport: t, workers: w, batch: base.batch, net: base.net }).stepMs]) });
  });
  return lineChart(series, { xLabel: 'workers', yLabel: 'speedup against one node', yMin: 0 });
}

function validationHtml(o: BenchOutcome): string {
  if (!o.validation || o.validation.length === 0) return '<h2>Model check</h2><p>No multi-worker configuration was measured, so the model could not be checked against one.</p>';
  return `<h2>Model check</h2><p>The model fitted on the 1-worker configurations only, predicting each multi-worker one.</p>` + table(
    ['config', 'net', 'batch', 'measured step', 'predicted step', 'measured speedup', 'predicted speedup', 'error'],
    o.validation.map((r) => [cellName(r.cell), netKey(r.cell.net), String(r.cell.batch), fmtMs(r.cell.stepMs), fmtMs(r.predictedMs), fmtX(r.measuredSpeedup), fmtX(r.predictedSpeedup), fmtPct(r.error, 1)]));
}

function whatIfHtml(o: BenchOutcome): string {
  if (!o.whatIf || o.whatIf.length === 0) return '';
  const n = o.whatIf[0]!.network;
  return `<h2>What if</h2><p>${n ? `Each worker on its own machine across a network of ${fmtMs(n.latencyMs)} one-way latency and ${fmtRate(n.bandwidthBitsPerS)}. ` : ''}Predicted by the model with ${esc(whatIfSettings(o.whatIfSpec, o.whatIf, o.plan.momentum))}; baseline = ${o.machine.emulated ? 'one emulated host' : 'one node of this machine'}.</p>` + table(
    ['config', 'cores', 'net', 'batch', 'step', 'compute', 'comm', 'epoch', 'one node', 'speedup', 'assumes'],
    o.whatIf.map((r) => [cellName(r), String(r.cores), netKey(r.net), String(r.batch), fmtMs(r.prediction.stepMs), fmtMs(r.prediction.computeMs), fmtMs(r.prediction.communicationMs), fmtMs(r.epochSeconds * 1000), fmtMs(r.baselineMs), fmtX(r.speedup), r.prediction.assumptions.join('; ') || '–']), { text: [10] });
}
