/**
 * The verdict in plain words at the end of every bench: does parallelism pay off, by how much,
 * where the time goes, what the break-even is, what would change the answer — and the two
 * caveats a reader needs: this machine's core count, and that a different global batch is a
 * different optimisation, not just a different speed.
 */
import { isBaseline, netKey } from './analysis.js';
import { hasHostPerWorker, lockstepMs } from './model.js';
import { fmtBytes, fmtInt, fmtMs, fmtPct, fmtX } from './format.js';
import { GROUPS } from './phases.js';
import { meanNote, missNote } from './time-to-accuracy.js';
import type { BenchCell, BenchOutcome } from './bench-facts.js';
import { median } from './stats.js';

type Facts = Omit<BenchOutcome, 'verdict' | 'answer'>;

/** A configuration as the tables name it: "threads x2", with local SGD "threads x2 K=16". */
export const cellName = (c: { transport: string; workers: number; averageEvery?: number; wire?: string | null }): string =>
  `${c.transport} x${c.workers}${(c.averageEvery ?? 1) > 1 ? ` K=${c.averageEvery}` : ''}${(c.wire ?? 'fp32') !== 'fp32' ? ` ${c.wire}` : ''}`;

/** A configuration as a sentence names it, by the flag that sets it: "threads x2, --average-every 16". */
export const configurationPhrase = (c: { transport: string; workers: number; averageEvery?: number; wire?: string | null }): string =>
  `${c.transport} x${c.workers}${(c.averageEvery ?? 1) > 1 ? `, --average-every ${c.averageEvery}` : ''}${(c.wire ?? 'fp32') !== 'fp32' ? `, --wire ${c.wire}` : ''}`;

/** Speedups within this band of 1 are called break-even rather than a win or a loss. */
export const EVEN_BAND = 0.05;
/** Ranks busy at once (mean over the steps) from which a configuration counts as running its workers at the same time. */
export const CONCURRENT_FROM = 1.2;

export function verdict(f: Facts): string[] {
  // on emulated hosts the baseline ran on one too: every speedup compares like with like
  const out: string[] = [f.machine.emulated ? 'Verdict (every configuration on emulated hosts, the single-node baseline too: one emulated host alone)' : 'Verdict'];
  const groups = new Map<string, BenchCell[]>();
  for (const c of f.cells) {
    const k = `${netKey(c.net)} @ ${c.batch}`;
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  for (const cells of groups.values()) out.push(...groupVerdict(f, cells), '');
  out.push(...coreNote(f), ...optimisationNote(f), ...modelNote(f));
  return out;
}

/**
 * The configurations that answer "does parallelism pay off": more than one worker (one worker of
 * another transport only shows its overhead) and, where any did, workers that ran at the same time.
 */
export function contenders<T extends { transport: string; workers: number }>(cells: T[], concurrency: (c: T) => number): T[] {
  const parallel = cells.filter((c) => !isBaseline(c));
  const multi = parallel.filter((c) => c.workers > 1);
  const concurrent = multi.filter((c) => concurrency(c) >= CONCURRENT_FROM);
  return concurrent.length > 0 ? concurrent : multi.length > 0 ? multi : parallel;
}

function groupVerdict(f: Facts, cells: BenchCell[]): string[] {
  const base = cells.find(isBaseline)!;
  const head = `${netKey(base.net)} at batch ${base.batch}:`;
  const parallel = cells.filter((c) => !isBaseline(c));
  if (parallel.length === 0) return [`${head} only the single-node baseline was measured (${fmtMs(base.summary.step.meanMs)} per step); add --transport and --workers to compare.`];
  const best = contenders(parallel, (c) => c.observation.concurrency).reduce((a, b) => (b.speedup > a.speedup ? b : a));
  const lines: string[] = [];
  // with --target-accuracy the answer is the time to it; the speed per step follows as detail
  const timed = base.timeToAccuracy !== undefined && base.timeToAccuracy !== null;
  if (timed) lines.push(timeHeadline(head, base, parallel));
  const stepHead = timed ? '  Per step:' : head;
  const inTurn = (c: BenchCell): boolean => c.workers > 1 && c.observation.concurrency < CONCURRENT_FROM && c.speedup > 1 + EVEN_BAND;
  const notParallelism = (c: BenchCell): string => `ran its ranks one after another (${c.observation.concurrency.toFixed(2)} busy at once), so the gain is not ` +
    `parallelism: smaller shards running faster per example (caches), or another job loading the machine while the baseline ran ` +
    `(load average ${f.machine.load[0].toFixed(1)} → ${f.machine.load[1].toFixed(1)} on ${f.machine.cores} cores)`;
  if (inTurn(best)) {
    lines.push(`${stepHead} parallelism does NOT pay off: ${cellName(best)} measured ${fmtX(best.speedup)} the speed of one node, but it ${notParallelism(best)}.`);
  } else if (best.speedup > 1 + EVEN_BAND) {
    lines.push(`${stepHead} parallelism PAYS OFF: ${cellName(best)} is ${fmtX(best.speedup)} as fast as one node ` +
      `(${fmtPct(best.efficiency, 0)} efficiency; ${fmtInt(best.samplesPerSecond)} against ${fmtInt(base.samplesPerSecond)} samples/s).`);
  } else if (best.speedup >= 1 - EVEN_BAND) {
    lines.push(`${stepHead} BREAK-EVEN: the best, ${cellName(best)}, runs at ${fmtX(best.speedup)} the speed of one node: no real gain for the extra workers.`);
  } else {
    lines.push(`${stepHead} parallelism does NOT pay off: the best parallel configuration, ${cellName(best)}, runs at ${fmtX(best.speedup)} ` +
      `the speed of one node (${(1 / best.speedup).toFixed(1)}x slower; ${fmtInt(best.samplesPerSecond)} against ${fmtInt(base.samplesPerSecond)} samples/s).`);
  }
  // a faster configuration passed over because its ranks took turns: say why it is not the answer
  for (const c of parallel.filter((x) => x !== best && inTurn(x) && x.speedup > best.speedup)) {
    lines.push(`  ${cellName(c)} measured ${fmtX(c.speedup)}, but it ${notParallelism(c)}.`);
  }
  const g = best.summary.groups;
  const step = best.summary.step.meanMs;
  const split = GROUPS.map((k) => [k, g[k]] as const).sort((a, b) => b[1] - a[1]).filter(([, v]) => v / step >= 0.005)
    .map(([k, v]) => `${k} ${fmtPct(v / step, 0)}`).join(', ');
  lines.push(`  Where the time goes in ${cellName(best)}'s ${fmtMs(step)} step: ${split}. ` +
    `Compute per step ${fmtMs(g.compute)} against ${fmtMs(base.summary.groups.compute)} on one node; ${fmtBytes(best.summary.bytesPerStep)} on the wire per step.`);
  if (best.workers > 1) lines.push(ceilingLine(f, best));
  if (best.summary.straggler) lines.push(`  Straggler: rank ${best.summary.straggler.rank} (${fmtMs(best.summary.straggler.busyMs)} busy per step against ${fmtMs(best.summary.straggler.othersBusyMs)} for the others).`);
  for (const be of f.breakEvens.filter((b) => netKey(b.net) === netKey(base.net) && b.batch === base.batch)) {
    const who = `${be.transport} x${be.workers}`;
    const pays = be.payingBatch === null
      ? `the model finds no batch up to ${fmtInt(f.plan.trainCount)} at which it pays off on this machine`
      : `the model predicts a speedup for every batch from ${be.payingBatch} on (powers of two up to ${fmtInt(f.plan.trainCount)})`;
    if (be.budgetMs <= 0) {
      lines.push(`  Break-even, ${who}: it would not pay off even with free communication: everything else in its step already takes ` +
        `${fmtMs(be.baselineMs - be.budgetMs)} against ${fmtMs(be.baselineMs)} on one node; ${pays}.`);
    } else {
      lines.push(`  Break-even, ${who}: it would need under ${fmtMs(be.budgetMs)} of communication per step to pay off; ` +
        `${be.measured ? 'measured' : 'the model predicts'} ${fmtMs(be.communicationMs)}; ${pays}.`);
    }
  }
  if (f.plan.epochs !== null) lines.push(timeToAccuracy(cells));
  if (f.plan.targetAccuracy !== null) lines.push(...overSeeds(cells));
  lines.push(`  What would change the answer: ${levers(f, best).join('; ')}.`);
  return lines;
}

/** What W ranks could reach on this machine with a free exchange: the lockstep probe. */
function ceilingLine(f: Facts, c: BenchCell): string {
  const shard = Math.ceil(c.batch / c.workers);
  const one = lockstepMs(f.model, c.net, 1, c.batch);
  // more ranks than cores take turns on them; ranks on emulated hosts of their own each compute alone
  const together = hasHostPerWorker(f.model, c.transport) ? lockstepMs(f.model, c.net, 1, shard)
    : lockstepMs(f.model, c.net, Math.min(c.workers, f.model.cores), shard) * Math.max(1, c.workers / f.model.cores);
  return `  Ceiling: with a free exchange ${c.workers} ranks would reach ${fmtX(one / together)} here (lockstep probe: ${fmtMs(one)} per step for one rank ` +
    `on the whole batch, ${fmtMs(together)} for ${c.workers} on ${shard} examples each); ${cellName(c)} reached ${fmtPct(c.speedup * together / one, 0)} of it.`;
}

/**
 * The time-to-accuracy answer for one net and batch, by the rule the answer table uses: the
 * fastest configuration with more than one worker running at the same time that missed the target
 * on no more seeds than one node, against one node's mean time, over 5% sooner to pay off.
 */
function timeHeadline(head: string, base: BenchCell, parallel: BenchCell[]): string {
  const t = base.timeToAccuracy!;
  const at = `by time to ${fmtPct(t.target, 1)}:`;
  const reached = contenders(parallel, (c) => c.observation.concurrency).filter((c) => c.timeToAccuracy?.meanSeconds != null);
  if (reached.length === 0) return `${head} ${at} no configuration with more workers reached it within ${t.maxEpochs} epochs${t.meanSeconds === null ? ', nor did one node' : `; one node took ${t.meanSeconds.toFixed(2)} s`}.`;
  // as in the answer: one that missed the target on more seeds than one node is not sooner
  const reliable = reached.filter((c) => c.timeToAccuracy!.misses <= t.misses);
  const best = (reliable.length > 0 ? reliable : reached).reduce((a, b) => (b.timeToAccuracy!.meanSeconds! < a.timeToAccuracy!.meanSeconds! ? b : a));
  const mine = best.timeToAccuracy!.meanSeconds!;
  if (t.meanSeconds === null) return `${head} ${at} parallelism PAYS OFF: ${cellName(best)} reached it in ${mine.toFixed(2)} s; one node never did within ${t.maxEpochs} epochs.`;
  const ratio = t.meanSeconds / mine;
  const together = best.workers > 1 && best.observation.concurrency >= CONCURRENT_FROM;
  const verb = together && ratio > 1 + EVEN_BAND ? 'parallelism PAYS OFF:' : 'parallelism does NOT pay off:';
  return `${head} ${at} ${verb} ${cellName(best)} reached it in ${mine.toFixed(2)} s against ${t.meanSeconds.toFixed(2)} s on one node (${fmtX(ratio)}).`;
}

/** Seconds of training until each configuration first reached the accuracy all of them reached. */
function timeToAccuracy(cells: BenchCell[]): string {
  const target = Math.min(...cells.map((c) => Math.max(...c.epochs.map((e) => e.accuracy))));
  const times = cells.map((c) => `${cellName(c)} ${c.epochs.find((e) => e.accuracy >= target)!.seconds.toFixed(1)} s`);
  return `  Time to ${fmtPct(target, 2)} test accuracy (the best every configuration reached): ${times.join(', ')}.`;
}

/** --target-accuracy: each configuration's mean over seeds, how it was taken and its misses. */
function overSeeds(cells: BenchCell[]): string[] {
  return cells.map((c) => {
    const t = c.timeToAccuracy!;
    const times = t.seeds.map((s) => (s.seconds === null ? `seed ${s.seed} missed` : `seed ${s.seed} ${s.seconds.toFixed(2)} s (${s.epochs} epochs)`));
    const mean = t.meanSeconds === null ? 'never' : `${t.meanSeconds.toFixed(2)} s`;
    const miss = missNote(t);
    return `  Time to ${fmtPct(t.target, 1)}, ${cellName(c)}: ${mean}, ${meanNote(t)}${miss ? `; ${miss}` : ''} [${times.join(', ')}].`;
  });
}

/** The levers that move this configuration, from its measured split and fitted costs. */
function levers(f: Facts, c: BenchCell): string[] {
  const tm = f.model.transports[c.transport];
  const g = c.summary.groups;
  const step = c.summary.step.meanMs;
  const out: string[] = [];
  if (c.workers > 1 && c.observation.concurrency < CONCURRENT_FROM) {
    out.push(`workers that run at the same time (${cellName(c)} ran its ranks one after another, ${c.observation.concurrency.toFixed(2)} busy at once, so the step's compute did not shrink)`);
  }
  if (g.communication + g.wait > g.compute) out.push('a bigger batch (the work per step grows with it, the exchanges per step do not)');
  else out.push('a bigger batch helps less here: compute already dominates the step');
  const lessOften = averagingLever(f, c);
  if (lessOften !== null) out.push(lessOften);
  if (tm && g.communication >= 0.05 * step) {
    const bytes = c.observation.ranks[0]?.bytes ?? 0;
    const fixed = tm.coordPerRankMs + tm.handoffPerRankMs;
    const perByte = (tm.coordPerByteMs + tm.handoffPerByteMs) * bytes;
    if (fixed >= perByte) {
      out.push(`a bigger model (most of each rank's exchange, ${fmtMs(fixed)}, is fixed and does not grow with the parameters)`);
    } else {
      out.push(`a bigger model alone would not (its ${fmtBytes(bytes)} per rank and step grow with the parameters as fast as the work per example)`);
    }
    if (tm.bytesPerExample > 64) out.push(`keeping the data on the workers (each example costs ${fmtBytes(tm.bytesPerExample)} on the wire now)`);
  }
  const e = f.machine.emulated;
  if (e && e.cpu !== null) {
    out.push(hasHostPerWorker(f.model, c.transport) ? 'more workers, each on a host of its own (the coordinator\'s link carries all their bytes)'
      : `not more workers: they share the coordinator host's ${e.cpu} cores`);
  } else if (c.workers >= f.machine.cores) {
    out.push(`not more workers: ${f.machine.cores} cores are already busy`);
  } else {
    out.push(`more workers, up to the ${f.machine.cores} cores`);
  }
  return out;
}

/**
 * Averaging less often (local SGD): the exchange and the waiting for it come once per K steps, so
 * K' steps divide them by K'/K. The K' at which the step would undercut one node's, from the
 * measured split; accuracy per epoch is the open question, which --target-accuracy answers.
 */
export function averagingLever(f: Pick<Facts, 'cells'>, c: BenchCell): string | null {
  if (c.workers < 2) return null;
  const base = f.cells.find((b) => isBaseline(b) && b.batch === c.batch && b.net.sizes.join() === c.net.sizes.join());
  const g = c.summary.groups;
  const exchange = g.communication + g.wait;
  const step = c.summary.step.meanMs;
  if (!base || exchange < 0.25 * step) return null;
  const target = base.summary.step.meanMs / (1 + EVEN_BAND);
  const rest = step - exchange;
  const k = c.averageEvery;
  if (rest >= target) return `not averaging less often alone: without its exchange ${cellName(c)}'s step (${fmtMs(rest)}) is still longer than one node's (${fmtMs(base.summary.step.meanMs)})`;
  const needed = Math.ceil((k * exchange) / (target - rest));
  if (needed <= k) return null;
  return `averaging less often (--average-every ${needed} or more instead of ${k}: ${cellName(c)} spends ${fmtMs(exchange)} per step exchanging and waiting, ` +
    `which comes once per averaging), if the accuracy per epoch holds: check with --target-accuracy`;
}

function coreNote(f: Facts): string[] {
  const e = f.machine.emulated;
  if (e && e.cpu !== null) {
    return [`Every host had ${e.cpu} cores, and the caps add up to at most this machine's ${f.machine.cores}, so hosts did not take cores from each other: ` +
      `inproc and threads workers shared the coordinator host's ${e.cpu} cores; each ws worker computed alone on its own host, and the model counts it so.`];
  }
  const over = f.cells.filter((c) => c.workers > f.machine.cores && c.observation.concurrency > CONCURRENT_FROM);
  const lines = [`This machine has ${f.machine.cores} cores: more than ${f.machine.cores} workers cannot speed anything up here, ` +
    `they only share the cores. The model caps usable parallelism at ${f.machine.cores} (ask --what-if cores=N for a bigger machine, or a network of N machines).`];
  if (over.length > 0) lines.push(`  Measured: ${over.map((c) => `${cellName(c)} at batch ${c.batch} ran at ${fmtX(c.speedup)}`).join('; ')}.`);
  return lines;
}

function optimisationNote(f: Facts): string[] {
  const batches = [...new Set(f.cells.map((c) => c.batch))].sort((a, b) => a - b);
  const perStep = f.cells.filter((c) => c.averageEvery === 1);
  const local = f.cells.filter((c) => c.averageEvery > 1);
  const maxDiff = Math.max(...perStep.map((c) => c.maxParamDiff));
  const lines = [`Same batch, same run: every configuration of a batch size used the baseline's global batch, eta ${f.plan.eta} and seed ${f.plan.seed}, ` +
    `so N workers ${local.length > 0 ? 'averaging every step ' : ''}computed the single-node SGD steps (largest parameter difference from the baseline at the end: ${maxDiff.toExponential(1)}); ` +
    `their speedups compare like with like.`];
  if (local.length > 0) {
    const ks = [...new Set(local.map((c) => c.averageEvery))].sort((x, y) => x - y);
    lines.push(`Local SGD (K=${ks.join(', ')}) is a different optimisation: between two averagings each rank steps on its own shards, so its parameters leave ` +
      `the baseline's (largest difference at the end: ${Math.max(...local.map((c) => c.maxParamDiff)).toExponential(1)}); ` +
      `its samples/s say nothing of its accuracy: compare it by time to accuracy (--target-accuracy).`);
  }
  if (batches.length > 1) {
    const lo = batches[0]!;
    const hi = batches.at(-1)!;
    lines.push(`Across batch sizes they do not: batch ${hi} takes ${(hi / lo).toFixed(0)}x fewer steps per epoch than batch ${lo}, and with the same eta ${f.plan.eta} ` +
      `it is a different optimisation (fewer, averaged updates — usually lower accuracy per epoch unless eta or the epochs grow), not the same run made faster. ` +
      `Compare batch sizes by time to accuracy (--epochs), not by samples/s.`);
  } else {
    lines.push(`A bigger global batch would change the optimisation too, not only the speed: with the same eta it makes fewer, averaged updates per epoch; check time to accuracy with --epochs.`);
  }
  return lines;
}

function modelNote(f: Facts): string[] {
  if (f.validation === null || f.validation.length === 0) return ['Model check: no multi-worker configuration to hold out; the predictions are unchecked extrapolations.'];
  const errs = f.validation.map((r) => Math.abs(r.error));
  const bad = f.validation.filter((r) => Math.abs(r.error) > 0.15);
  const lines = [`Model check: fitted on the 1-worker runs only, it predicted the speedups of ${errs.length} multi-worker configurations within ` +
    `${fmtPct(Math.max(...errs), 0)} (median ${fmtPct(median(errs), 0)}).`];
  if (bad.length > 0) lines.push(`  Off by more than 15%: ${bad.map((r) => `${cellName(r.cell)} at batch ${r.cell.batch} (${netKey(r.cell.net)}): predicted ${fmtX(r.predictedSpeedup)}, measured ${fmtX(r.measuredSpeedup)}`).join('; ')}.`);
  // what the off cells' predictions could not see, once each
  for (const note of new Set(bad.flatMap((r) => r.assumptions))) lines.push(`  Not in the model there: ${note}.`);
  return lines;
}

