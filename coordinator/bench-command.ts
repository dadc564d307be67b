/**
 * `dpt bench`: the single-node baseline and every requested configuration, back to back in one
 * process, on the same data, seed and initial parameters; then the cost model, the what-if
 * predictions, the verdict, and optionally an HTML report. Groups come only from startGroup, so
 * a transport works here as soon as session.ts knows it.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { loadMnist } from '../src/data/mnist.js';
import type { BenchConfig, TrainConfig } from '../src/config.js';
import { maxAbsDiff } from './equivalence.js';
import { benchTables } from '../src/profile/bench-tables.js';
import { reducePerFloatMs, usableCores } from '../src/profile/calibrate.js';
import { fmtMs } from '../src/profile/format.js';
import { median } from '../src/profile/stats.js';
import { buildOutcome, type BenchOutcome, type MeasuredCell } from '../src/profile/outcome.js';
import { reportHtml } from '../src/profile/report-html.js';
import { runCell, type CellResult } from './bench-cell.js';
import { openSession } from './session.js';
import type { TransportName } from './worker-group.js';

export async function benchCommand(c: BenchConfig, out: (line: string) => void = (l) => console.log(l),
  progress: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<BenchOutcome> {
  const data = loadMnist(c.base.dataDir ?? undefined);
  const cores = availableParallelism();
  const loadAtStart = loadavg()[0]!;
  // measured before every batch group: another job on the machine changes it over the run
  const usable: number[] = [];
  const measured: MeasuredCell[] = [];
  let kernelsName = '';
  let calibration = 0;
  const plan = { steps: c.steps, burnIn: c.burnIn, epochs: c.epochs, evalLimit: c.evalLimit };
  for (const sizes of c.nets) {
    const config: TrainConfig = { ...c.base, spec: { ...c.base.spec, sizes } };
    const session = await openSession(config, data);
    kernelsName = session.kernels.name;
    calibration = reducePerFloatMs(session.kernels, session.network.layout.size);
    const initial = Float32Array.from(session.params);
    for (const batch of c.batches) {
      usable.push(await usableCores(cores));
      // the baseline first, then the requested grid (inproc x1 is not run twice)
      const grid: [TransportName, number][] = [['inproc', 1]];
      for (const t of c.transports) for (const w of c.workers) if (!(t === 'inproc' && w === 1)) grid.push([t, w]);
      let baseline: CellResult | null = null;
      for (const [transport, workers] of grid) {
        const r = await runCell(session, initial, transport, workers, batch, plan);
        baseline ??= r;
        const diff = maxAbsDiff(baseline.params, r.params);
        progress(`  ${sizes.join('-')} batch ${batch} ${transport} x${workers}: ${fmtMs(r.summary.step.meanMs)} per step ` +
          `(p50 ${fmtMs(r.summary.step.p50Ms)}), parameters ${diff === 0 ? 'identical to' : `within ${diff.toExponential(1)} of`} the baseline's`);
        measured.push(toMeasured(r, diff));
      }
    }
  }
  const outcome = buildOutcome(measured, { cores, node: process.versions.node, kernels: kernelsName, cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    usableCores: median(usable), load: [loadAtStart, loadavg()[0]!] }, {
    ...plan, eta: c.base.eta, seed: c.base.seed, trainCount: c.base.trainLimit ?? data.train.count, requestedWorkers: c.workers,
  }, c.whatIf, calibration);
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
    accuracy: r.accuracy, evalImages: r.evalImages, trainSeconds: r.trainSeconds, losses: r.losses, maxParamDiff,
    epochs: r.epochs.map((e) => ({ epoch: e.epoch, accuracy: e.testCorrect / e.testTotal, seconds: (seconds += e.trainSeconds) })),
  };
}
