/**
 * `dpt bench`: the single-node baseline and every requested configuration, back to back in one
 * process, on the same data, seed and initial parameters; then the cost model, the what-if
 * predictions, the verdict, and optionally an HTML report. Groups come only from startGroup, so
 * a transport works here as soon as session.ts knows it.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { loadMnist } from '../src/data/mnist.js';
import type { BenchConfig } from '../src/config.js';
import { maxAbsDiff } from '../coordinator/equivalence.js';
import { benchTables } from '../src/profile/bench-tables.js';
import { reducePerFloatMs } from '../bench/harness/calibrate.js';
import { fmtMs } from '../src/profile/format.js';
import { median } from '../src/profile/stats.js';
import { buildOutcome, type BenchOutcome, type MeasuredCell } from '../src/profile/outcome.js';
import { reportHtml } from '../src/profile/report-html.js';
import { mergeCell, runCell, type CellResult, type CellRun } from '../bench/harness/cell.js';
import { runSideBySide } from '../bench/harness/side-by-side.js';
import { ModelProbes, probePoints } from '../bench/harness/probes.js';
import { openSession, type Session } from '../coordinator/session.js';
import type { TransportName } from '../src/config.js';

export async function benchCommand(c: BenchConfig, out: (line: string) => void = (l) => console.log(l),
  progress: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<BenchOutcome> {
  const data = loadMnist(c.base.dataDir ?? undefined);
  const cores = availableParallelism();
  const loadAtStart = loadavg()[0]!;
  const repeats = c.epochs === null ? c.repeats : 1;
  const stepsPerRepeat = Math.ceil(c.steps / repeats);
  const plan = { steps: stepsPerRepeat, burnIn: c.burnIn, epochs: c.epochs, evalLimit: c.evalLimit };
  const sessions: Session[] = [];
  for (const sizes of c.nets) sessions.push(await openSession({ ...c.base, spec: { ...c.base.spec, sizes } }, data));
  const initials = sessions.map((s) => Float32Array.from(s.params));
  // the cost model's probe, before every repetition (bench/harness/probes.ts), of every net, batch
  // and worker count the model will be asked about (2 workers: the break-even's default)
  const specs = sessions.map((s) => s.config.spec);
  const whatIfSizes = c.whatIf?.sizes;
  if (whatIfSizes && !c.nets.some((n) => n.join() === whatIfSizes.join())) specs.push({ ...c.base.spec, sizes: whatIfSizes });
  const points = probePoints([...c.batches, ...(c.whatIf?.batch ?? [])], [1, 2, ...c.workers, ...(c.whatIf?.workers ?? [])],
    [cores, Math.min(cores, c.whatIf?.cores ?? cores)]);
  const probes = new ModelProbes(specs, c.base.kernels, data.train, points);
  // the baseline first, then the requested grid (inproc x1 is not run twice)
  const grid: [TransportName, number][] = [['inproc', 1]];
  for (const t of c.transports) for (const w of c.workers) if (!(t === 'inproc' && w === 1)) grid.push([t, w]);
  // Fixed steps: the configurations of a (net, batch) run side by side, taking turns in blocks of
  // steps with their groups kept running (bench/harness/side-by-side.ts), so a slow spell of the machine
  // hits them alike; repetitions start them afresh. Time to accuracy (--epochs) runs one cell
  // after another.
  const runs = new Map<string, CellRun[]>();
  for (let rep = 0; rep < repeats; rep++) {
    for (const line of await probes.probe()) progress(`  ${repeats > 1 ? `[${rep + 1}/${repeats}] ` : ''}${line}`);
    for (const [n, session] of sessions.entries()) {
      for (const batch of c.batches) {
        const results = plan.epochs === null
          ? await runSideBySide(session, initials[n]!, grid, batch, plan)
          : [];
        for (const [i, [transport, workers]] of grid.entries()) {
          const r = results[i] ?? await runCell(session, initials[n]!, transport, workers, batch, plan);
          const key = `${n}|${batch}|${transport}|${workers}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
          progress(`  ${repeats > 1 ? `[${rep + 1}/${repeats}] ` : ''}${c.nets[n]!.join('-')} batch ${batch} ${transport} x${workers}: ` +
            `${fmtMs(median(r.measured.map((s) => s.t4 - s.t0)))} per step (median of ${r.measured.length})`);
        }
      }
    }
  }
  const measured: MeasuredCell[] = [];
  const reduceTimings: number[] = [];
  for (const [n, session] of sessions.entries()) {
    reduceTimings.push(reducePerFloatMs(session.kernels, session.network.layout.size));
    for (const batch of c.batches) {
      const cells = grid.map(([t, w]) => mergeCell(t, w, batch, c.nets[n]!, c.burnIn, runs.get(`${n}|${batch}|${t}|${w}`)!));
      for (const cell of cells) measured.push(toMeasured(cell, maxAbsDiff(cells[0]!.params, cell.params)));
    }
  }
  const outcome = buildOutcome(measured, {
    cores, node: process.versions.node, kernels: sessions[0]!.kernels.name, cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    load: [loadAtStart, loadavg()[0]!], lockstep: probes.tables(),
  }, {
    ...plan, steps: stepsPerRepeat * repeats, repeats, eta: c.base.eta, seed: c.base.seed, trainCount: c.base.trainLimit ?? data.train.count, requestedWorkers: c.workers,
  }, c.whatIf, median(reduceTimings));
  if (c.report !== null) {
    writeFileSync(c.report, reportHtml(outcome));
    progress(`Wrote the report to ${c.report}`);
  }
  if (c.json) out(JSON.stringify(outcome));
  else for (const line of benchTables(outcome)) out(line);
  return outcome;
}

function toMeasured(r: CellResult, maxParamDiff: number): MeasuredCell {
  let seconds = 0;
  return {
    transport: r.transport, workers: r.workers, batch: r.batch, net: r.net, summary: r.summary, observation: r.observation,
    accuracy: r.accuracy, evalImages: r.evalImages, trainSeconds: r.trainSeconds, losses: r.summary.losses, maxParamDiff,
    epochs: r.epochs.map((e) => ({ epoch: e.epoch, accuracy: e.testCorrect / e.testTotal, seconds: (seconds += e.trainSeconds) })),
  };
}
