/**
 * `dpt bench`: the single-node baseline and every requested configuration, back to back in one
 * process, on the same data, seed and initial parameters; then the cost model, the what-if
 * predictions, the verdict, and optionally an HTML report. Groups come only from startGroup, so
 * a transport works here as soon as session.ts knows it.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { loadMnist, type Mnist } from '../src/data/mnist.js';
import type { BenchConfig } from '../src/config.js';
import { maxAbsDiff } from '../coordinator/equivalence.js';
import { benchTables } from '../src/profile/bench-tables.js';
import { reducePerFloatMs } from '../bench/harness/calibrate.js';
import { fmtMs, fmtPct } from '../src/profile/format.js';
import { aggregateSeeds, type SeedRun, type TimeToAccuracy } from '../src/profile/time-to-accuracy.js';
import { median } from '../src/profile/stats.js';
import { buildOutcome, type BenchOutcome, type MeasuredCell } from '../src/profile/outcome.js';
import { reportHtml } from '../src/profile/report-html.js';
import { mergeCell, runCell, type CellPlan, type CellResult, type CellRun } from '../bench/harness/cell.js';
import { runSideBySide } from '../bench/harness/side-by-side.js';
import { ModelProbes, probePoints } from '../bench/harness/probes.js';
import { benchConfigurations, configurationKey, type BenchConfiguration } from '../bench/harness/configurations.js';
import { cellName } from '../src/profile/verdict.js';
import { openSession, type Session } from '../coordinator/session.js';
import type { TransportName } from '../src/config.js';
import { checkWhatIfWire } from '../src/profile/what-if.js';

export async function benchCommand(c: BenchConfig, out: (line: string) => void = (l) => console.log(l),
  progress: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<BenchOutcome> {
  // a what-if the measured transports cannot answer fails before anything is measured
  if (c.whatIf) checkWhatIfWire(c.whatIf, [...new Set(['inproc', ...c.transports])]);
  const data = loadMnist(c.base.dataDir ?? undefined);
  const cores = availableParallelism();
  const loadAtStart = loadavg()[0]!;
  const seedRuns = c.targetAccuracy !== null;
  const repeats = c.epochs === null && !seedRuns ? c.repeats : 1;
  const stepsPerRepeat = Math.ceil(c.steps / repeats);
  const plan = { steps: stepsPerRepeat, burnIn: c.burnIn, epochs: seedRuns ? c.maxEpochs : c.epochs, evalLimit: c.evalLimit, target: c.targetAccuracy };
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
  // the baseline first, then the requested grid (bench/harness/configurations.ts)
  const grid = benchConfigurations(c);
  // Fixed steps: the configurations of a (net, batch) run side by side, taking turns in blocks of
  // steps with their groups kept running (bench/harness/side-by-side.ts), so a slow spell of the machine
  // hits them alike; repetitions start them afresh. Time to accuracy (--epochs) runs one cell
  // after another.
  const runs = new Map<string, CellRun[]>();
  const seedTimes = new Map<string, SeedRun[]>();
  if (seedRuns) {
    for (const line of await probes.probe()) progress(`  ${line}`);
    await runSeeds(c, data, grid, plan, runs, seedTimes, progress);
  }
  for (let rep = 0; rep < (seedRuns ? 0 : repeats); rep++) {
    for (const line of await probes.probe()) progress(`  ${repeats > 1 ? `[${rep + 1}/${repeats}] ` : ''}${line}`);
    for (const [n, session] of sessions.entries()) {
      for (const batch of c.batches) {
        const results = plan.epochs === null
          ? await runSideBySide(session, initials[n]!, grid, batch, plan)
          : [];
        for (const [i, configuration] of grid.entries()) {
          const r = results[i] ?? await runCell(session, initials[n]!, configuration, batch, plan);
          const key = `${n}|${batch}|${configurationKey(configuration)}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
          progress(`  ${repeats > 1 ? `[${rep + 1}/${repeats}] ` : ''}${c.nets[n]!.join('-')} batch ${batch} ${cellName(configuration)}: ` +
            (configuration.averageEvery > 1
              ? `${fmtMs(median(r.measured.map((s) => s.t4 - s.t0)))} per round of up to ${configuration.averageEvery} steps (median of ${r.measured.length})`
              : `${fmtMs(median(r.measured.map((s) => s.t4 - s.t0)))} per step (median of ${r.measured.length})`));
        }
      }
    }
  }
  const measured: MeasuredCell[] = [];
  const reduceTimings: number[] = [];
  for (const [n, session] of sessions.entries()) {
    reduceTimings.push(reducePerFloatMs(session.kernels, session.network.layout.size));
    for (const batch of c.batches) {
      const keys = grid.map((g) => `${n}|${batch}|${configurationKey(g)}`);
      const cells = grid.map((g, i) => mergeCell(g, batch, c.nets[n]!, c.burnIn, runs.get(keys[i]!)!));
      for (const [i, cell] of cells.entries()) {
        const seeds = seedTimes.get(keys[i]!);
        const tta = seeds ? aggregateSeeds(c.targetAccuracy!, c.maxEpochs, seeds) : null;
        measured.push(toMeasured(cell, maxAbsDiff(cells[0]!.params, cell.params), tta, runs.get(keys[i]!)![0]!));
      }
    }
  }
  const outcome = buildOutcome(measured, {
    cores, node: process.versions.node, kernels: sessions[0]!.kernels.name, cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    load: [loadAtStart, loadavg()[0]!], lockstep: probes.tables(), emulated: c.emulated,
  }, {
    ...plan, epochs: c.epochs, targetAccuracy: c.targetAccuracy, maxEpochs: c.maxEpochs, seeds: seedRuns ? c.seeds : [c.base.seed], steps: stepsPerRepeat * repeats, repeats, eta: c.base.eta, momentum: c.base.momentum, seed: c.base.seed, trainCount: c.base.trainLimit ?? data.train.count, requestedWorkers: c.workers,
    averageEvery: c.averageEvery, localSgdAfter: c.localSgdAfter, averageOptimizerState: c.averageOptimizerState, averageOnly: c.base.averageOnly,
  }, c.whatIf, median(reduceTimings));
  // the measurements first: a report that cannot be written must not cost them
  if (c.json) out(JSON.stringify(outcome));
  else for (const line of benchTables(outcome)) out(line);
  if (c.report !== null) {
    writeFileSync(c.report, reportHtml(outcome));
    progress(`Wrote the report to ${c.report}`);
  }
  return outcome;
}

/**
 * --target-accuracy: every configuration once per seed, one after another, each seed with its own
 * initial parameters and data order (a session per seed and net), until it reaches the target or
 * runs out of epochs. The first seed's run is the configuration's measured cell (its profile and
 * accuracy curve); every seed's time goes to seedTimes.
 */
async function runSeeds(c: BenchConfig, data: Mnist, grid: BenchConfiguration[], plan: CellPlan, runs: Map<string, CellRun[]>,
  seedTimes: Map<string, SeedRun[]>, progress: (line: string) => void): Promise<void> {
  for (const seed of c.seeds) {
    for (const [n, sizes] of c.nets.entries()) {
      const session = await openSession({ ...c.base, seed, spec: { ...c.base.spec, sizes } }, data);
      const initial = Float32Array.from(session.params);
      for (const batch of c.batches) {
        for (const configuration of grid) {
          const r = await runCell(session, initial, configuration, batch, plan);
          const key = `${n}|${batch}|${configurationKey(configuration)}`;
          if (!runs.has(key)) runs.set(key, [r]);
          const last = r.epochs.at(-1)!;
          const hit = last.testCorrect / last.testTotal >= c.targetAccuracy!;
          seedTimes.set(key, [...(seedTimes.get(key) ?? []), { seed, seconds: hit ? r.wallSeconds.at(-1)! : null, epochs: hit ? last.epoch : null }]);
          progress(`  seed ${seed} ${sizes.join('-')} batch ${batch} ${cellName(configuration)}: ` +
            (hit ? `${fmtPct(c.targetAccuracy!, 1)} after ${last.epoch} epochs, ${r.wallSeconds.at(-1)!.toFixed(2)} s`
              : `missed ${fmtPct(c.targetAccuracy!, 1)} (${fmtPct(last.testCorrect / last.testTotal, 1)} after ${last.epoch} epochs)`));
        }
      }
    }
  }
}

function toMeasured(r: CellResult, maxParamDiff: number, timeToAccuracy: TimeToAccuracy | null, first: CellRun): MeasuredCell {
  let seconds = 0;
  // with seeds, the curve is the first seed's wall clock, the same clock as its time to accuracy
  const wall = timeToAccuracy === null ? null : first.wallSeconds;
  return {
    timeToAccuracy,
    transport: r.transport, workers: r.workers, averageEvery: r.averageEvery, wire: r.wire, batch: r.batch, net: r.net, summary: r.summary, observation: r.observation,
    accuracy: r.accuracy, evalImages: r.evalImages, trainSeconds: r.trainSeconds, losses: r.summary.losses, maxParamDiff,
    epochs: r.epochs.map((e, i) => ({ epoch: e.epoch, accuracy: e.testCorrect / e.testTotal, seconds: wall ? wall[i]! : (seconds += e.trainSeconds) })),
  };
}
