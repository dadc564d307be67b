/**
 * The answer a bench leads with, per net: one row per measured configuration (its rate, its
 * speedup against one node at the same batch, whether it pays off) and one sentence saying which
 * configuration to use. The text, the --json object and the HTML report all show this object.
 */
import { isBaseline, netKey } from './analysis.js';
import type { AnswerRow, BenchCell, Machine, NetAnswer } from './bench-facts.js';
import { fmtInt, fmtPct, fmtX } from './format.js';
import { cellName, configurationPhrase, CONCURRENT_FROM, contenders, EVEN_BAND } from './verdict.js';

/** One answer per net, in the order the nets were measured. */
export function answer(cells: BenchCell[], timeToAccuracy: boolean, machine: Pick<Machine, 'cores' | 'load'>): NetAnswer[] {
  const nets = [...new Set(cells.map((c) => netKey(c.net)))];
  return nets.map((net) => netAnswer(net, cells.filter((c) => netKey(c.net) === net), timeToAccuracy, machine));
}

function netAnswer(net: string, cells: BenchCell[], timeToAccuracy: boolean, machine: Pick<Machine, 'cores' | 'load'>): NetAnswer {
  if (cells.every((c) => c.timeToAccuracy)) return seedsAnswer(net, cells);
  const target = timeToAccuracy ? Math.min(...cells.map((c) => Math.max(...c.epochs.map((e) => e.accuracy)))) : null;
  const rows: AnswerRow[] = cells.map((c) => ({
    config: cellName(c), transport: c.transport, workers: c.workers, averageEvery: c.averageEvery, wire: c.wire ?? 'fp32', batch: c.batch, samplesPerSecond: c.samplesPerSecond,
    secondsToAccuracy: target === null ? null : c.epochs.find((e) => e.accuracy >= target)?.seconds ?? null,
    speedupToAccuracy: null, misses: null, seedCount: null,
    speedup: c.speedup, concurrency: c.observation.concurrency,
    // Parallelism pays off only where workers ran at the same time: one worker, or ranks taken one
    // after another, can only look faster through noise or cache effects, which do not carry over.
    paysOff: isBaseline(c) ? null : c.workers > 1 && c.observation.concurrency >= CONCURRENT_FROM && c.speedup > 1 + EVEN_BAND,
  }));
  const parallel = rows.filter((r) => r.workers > 1);
  if (parallel.length === 0) {
    return { net, targetAccuracy: target, rows, best: null,
      advice: 'Stay on one node: nothing with more than one worker was measured (add --transport threads --workers 1,2 to compare).' };
  }
  // the same contenders as the verdict's: more than one worker, running at the same time where any did
  const candidates = contenders(rows, (r) => r.concurrency);
  const best = target === null ? fastest(candidates, (r) => -r.speedup) : fastestToAccuracy(rows, candidates);
  const advice = target === null ? stepAdvice(best, rows) : timeAdvice(best, rows, target);
  return {
    net, targetAccuracy: target, rows, best: bestOf(best),
    // in-process ranks take turns whatever the machine, so only other transports wait for free cores
    advice: best.paysOff || best.transport === 'inproc' ? advice : advice.replace(/\.$/, sharedMachine(machine)),
  };
}

const bestOf = (r: AnswerRow): NetAnswer['best'] => ({ transport: r.transport, workers: r.workers, averageEvery: r.averageEvery, wire: r.wire, batch: r.batch });

/** A configuration and its batch in a sentence: "threads x2 at batch 1024", with local SGD "…, --average-every 16". */
function atBatch(r: AnswerRow): string {
  return `${r.transport} x${r.workers} at batch ${r.batch}${r.averageEvery > 1 ? `, --average-every ${r.averageEvery}` : ''}${r.wire !== 'fp32' ? `, --wire ${r.wire}` : ''}`;
}

/**
 * Workers need cores of their own: a "stay" measured while other jobs held a core may not hold on
 * an idle machine. The load average when the bench started is other jobs' alone (a whole core's
 * worth of them: 1).
 */
function sharedMachine(m: Pick<Machine, 'cores' | 'load'>): string {
  const before = m.load[0];
  if (!(before >= BUSY_LOAD) || m.cores < 2) return '.';
  return `, but other jobs held the cores while this ran (load average ${before.toFixed(1)} on ${m.cores} cores at the start): run it again on an idle machine.`;
}

/** a load average above which at least one core was taken by other jobs */
const BUSY_LOAD = 1;

/** The row with the least cost (ties: the first measured). */
function fastest(rows: AnswerRow[], cost: (r: AnswerRow) => number): AnswerRow {
  return rows.reduce((a, b) => (cost(b) < cost(a) ? b : a));
}

const seconds = (r: AnswerRow): number => r.secondsToAccuracy ?? Infinity;

/** With --epochs the winner is what reaches the accuracy first, whatever its batch, if it pays off against one node at its batch. */
function fastestToAccuracy(rows: AnswerRow[], candidates: AnswerRow[]): AnswerRow {
  const first = fastest(rows, seconds);
  return first.paysOff ? first : fastest(candidates, seconds);
}

function stepAdvice(best: AnswerRow, rows: AnswerRow[]): string {
  const at = atBatch(best);
  // samples per second say nothing of what fewer averagings do to the accuracy
  const accuracy = best.averageEvery > 1 ? `; averaging every ${best.averageEvery} steps trains differently, so check its time to accuracy with --target-accuracy` : '';
  if (best.paysOff) return `Use ${at}: ${fmtX(best.speedup)} single-node (${fmtInt(best.samplesPerSecond)} samples/s)${accuracy}.`;
  if (best.concurrency < CONCURRENT_FROM) {
    return `Stay on one node: no configuration measured ran its workers at the same time (the best, ${at}, ran its ranks one after another, ` +
      `${fmtX(best.speedup)})${best.transport === 'inproc' ? '; the in-process group always does: compare --transport threads' : ''}.`;
  }
  const even = best.speedup >= 1 - EVEN_BAND ? ', no real gain for the extra workers' : '';
  const beaten = rows.some((r) => r.paysOff === false && r.speedup > 1 + EVEN_BAND);
  return `Stay on one node: ${beaten ? 'nothing whose workers ran at the same time beats it' : 'nothing measured beats it'}; ` +
    `the closest is ${at} (${fmtX(best.speedup)}${even}).`;
}

function timeAdvice(best: AnswerRow, rows: AnswerRow[], target: number): string {
  const acc = fmtPct(target, 2);
  if (best.paysOff) return `Use ${atBatch(best)}: ${acc} test accuracy in ${fmtS(best.secondsToAccuracy)}, ${fmtX(best.speedup)} single-node at that batch.`;
  const single = fastest(rows.filter((r) => r.paysOff === null), seconds);
  return `Stay on one node at batch ${single.batch}: it reaches ${acc} test accuracy in ${fmtS(single.secondsToAccuracy)}; ` +
    `the closest with more workers is ${atBatch(best)} (${fmtS(best.secondsToAccuracy)}, ${fmtX(best.speedup)} single-node at that batch).`;
}

/**
 * --target-accuracy: configurations ranked by their MLPerf mean time to the target over seeds,
 * each against one node at its batch. Only a configuration that reached the target in at least
 * one seed counts; more than one worker is advised when it reaches it more than the break-even
 * band sooner than one node, with its ranks running at the same time.
 */
function seedsAnswer(net: string, cells: BenchCell[]): NetAnswer {
  const target = cells[0]!.timeToAccuracy!.target;
  const meanOf = (c: BenchCell): number | null => c.timeToAccuracy!.meanSeconds;
  const rows: AnswerRow[] = cells.map((c) => {
    const base = cells.find((b) => isBaseline(b) && b.batch === c.batch);
    const mine = meanOf(c);
    const theirs = base ? meanOf(base) : null;
    const speedupToAccuracy = mine === null || theirs === null ? null : theirs / mine;
    return {
      config: cellName(c), transport: c.transport, workers: c.workers, averageEvery: c.averageEvery, wire: c.wire ?? 'fp32', batch: c.batch, samplesPerSecond: c.samplesPerSecond,
      secondsToAccuracy: mine, speedupToAccuracy, misses: c.timeToAccuracy!.misses, seedCount: c.timeToAccuracy!.seeds.length,
      speedup: c.speedup, concurrency: c.observation.concurrency,
      paysOff: isBaseline(c) ? null : c.workers > 1 && c.observation.concurrency >= CONCURRENT_FROM &&
        mine !== null && (theirs === null || theirs / mine > 1 + EVEN_BAND),
    };
  });
  const acc = fmtPct(target, 1);
  const reached = rows.filter((r) => r.secondsToAccuracy !== null);
  // as the verdict chooses: more than one worker, and where any ran at the same time, those
  const parallel = contenders(reached.filter((r) => r.workers > 1), (r) => r.concurrency);
  const single = reached.filter((r) => r.paysOff === null);
  if (parallel.length === 0) {
    const advice = single.length === 0
      ? `No configuration reached ${acc} test accuracy in any seed: lower --target-accuracy or raise --max-epochs.`
      : `Stay on one node: ${acc} in ${fmtS(fastest(single, seconds).secondsToAccuracy)}; nothing with more than one worker reached ${acc} in any seed.`;
    return { net, targetAccuracy: target, rows, best: null, advice };
  }
  // A configuration that misses the target on more seeds than one node does is not sooner: on
  // those seeds it never arrives, and its mean is over the lucky ones. It is named, not advised.
  const baselineMisses = (r: AnswerRow): number => rows.find((b) => b.paysOff === null && b.batch === r.batch)?.misses ?? Infinity;
  const reliable = parallel.filter((r) => r.misses! <= baselineMisses(r));
  const quickest = fastest(parallel, seconds);
  const best = reliable.length > 0 ? fastest(reliable, seconds) : quickest;
  const one = single.find((r) => r.batch === best.batch) ?? null;
  const against = one === null ? `one node never reached it within the epochs allowed` : `against ${fmtS(one.secondsToAccuracy)} on one node`;
  const ratio = best.speedupToAccuracy === null ? '' : ` (${fmtX(best.speedupToAccuracy)})`;
  const missed = (r: AnswerRow): string => `${r.misses} of ${r.seedCount} seeds`;
  const unreliable = quickest === best ? ''
    : `; ${configurationPhrase(quickest)} was quicker (${fmtS(quickest.secondsToAccuracy)}) but missed ${acc} in ${missed(quickest)}, one node in ${baselineMisses(quickest)}`;
  const advice = best.paysOff
    ? `Use ${configurationPhrase(best)}: ${acc} in ${fmtS(best.secondsToAccuracy)} ${against}${ratio}${unreliable}.`
    : `Stay on one node: ${acc} in ${fmtS(one!.secondsToAccuracy)}; the fastest with more workers, ${configurationPhrase(best)}, took ${fmtS(best.secondsToAccuracy)}${ratio}` +
      `${best.concurrency < CONCURRENT_FROM ? ', its ranks one after another' : ''}.`;
  return { net, targetAccuracy: target, rows, best: bestOf(best), advice };
}

/** The answer's table as strings, header first: the text output and the HTML report both draw this. */
export function answerTable(a: NetAnswer): string[][] {
  if (a.rows.every((r) => r.seedCount !== null)) {
    return [
      ['config', 'batch', `time to ${fmtPct(a.targetAccuracy!, 1)}`, 'vs one node', 'missed', 'pays off'],
      ...a.rows.map((r) => [r.config, String(r.batch), fmtS(r.secondsToAccuracy), r.speedupToAccuracy === null ? '–' : fmtX(r.speedupToAccuracy),
        `${r.misses} of ${r.seedCount}`, paysOffCell(r)]),
    ];
  }
  const rate = a.targetAccuracy === null ? 'samples/s' : `time to ${fmtPct(a.targetAccuracy, 2)}`;
  return [
    ['config', 'batch', rate, 'speedup', 'pays off'],
    ...a.rows.map((r) => [r.config, String(r.batch), a.targetAccuracy === null ? fmtInt(r.samplesPerSecond) : fmtS(r.secondsToAccuracy),
      fmtX(r.speedup), paysOffCell(r)]),
  ];
}

function paysOffCell(r: AnswerRow): string {
  if (r.paysOff === null) return 'baseline';
  if (r.paysOff) return 'yes';
  // faster, but not through parallelism: say why it is still a no
  // over seeds, faster means reaching the target sooner; a configuration that never did is not faster
  const speedup = r.seedCount === null ? r.speedup : r.speedupToAccuracy ?? 0;
  return speedup > 1 + EVEN_BAND ? (r.workers === 1 ? 'no (1 worker)' : 'no (ranks in turn)') : 'no';
}

/** What the table's speedup and "pays off" mean, in two lines under the heading. */
export const ANSWER_LEGEND: readonly string[] = [
  "speedup: one node's median step (inproc x1, same net and batch) ÷ this configuration's",
  `pays off: over ${Math.round(EVEN_BAND * 100)}% faster, with more than one worker running at the same time`,
];

/** The legend under the heading with --target-accuracy, where the ratio is of times to the target. */
export const SEEDS_LEGEND: readonly string[] = [
  'time to A: mean over seeds of the wall-clock seconds to test accuracy A',
  '(3 or more seeds: the fastest and slowest dropped); missed: seeds that never reached A',
  "vs one node: inproc x1's time at the same batch ÷ this configuration's",
  `pays off: over ${Math.round(EVEN_BAND * 100)}% sooner, with more than one worker running at the same time`,
];

/** The legend for this outcome's answer tables. */
export const answerLegend = (targetAccuracy: number | null): readonly string[] => (targetAccuracy === null ? ANSWER_LEGEND : SEEDS_LEGEND);

const fmtS = (s: number | null): string => (s === null ? 'never' : `${s.toFixed(s < 1 ? 2 : 1)} s`);
