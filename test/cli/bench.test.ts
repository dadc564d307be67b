import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchCommand } from '../../cli/bench.js';
import { BENCH_DEFAULTS, DEFAULTS, type BenchConfig } from '../../src/config.js';
import { dpt } from '../helpers/cli.js';
import type { BenchOutcome } from '../../src/profile/outcome.js';
import { parseWhatIf } from '../../src/profile/what-if.js';
import { meanEpochs } from '../../src/profile/time-to-accuracy.js';
import { screenshot, tableEdges } from '../../bench/report-screenshot.js';
import { benchTables } from '../../src/profile/bench-tables.js';
import { fmtX } from '../../src/profile/format.js';
import { chromiumMissing, skipNote } from '../helpers/environment.js';

const dir = mkdtempSync(join(tmpdir(), 'dpt-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(o: Partial<BenchConfig>): BenchConfig {
  return {
    base: { ...DEFAULTS, kernels: 'js', trainLimit: 1000 }, nets: [[784, 30, 10]], transports: ['inproc'], workers: [1, 2],
    batches: [10, 32], steps: 15, burnIn: 3, repeats: 1, epochs: null, targetAccuracy: null, maxEpochs: 40, seeds: [1], evalLimit: 100, whatIf: null, report: null, json: true, emulated: null, averageEvery: [1], wire: ['fp32'], localSgdAfter: 0, averageOptimizerState: false, ...o,
  };
}

async function bench(c: BenchConfig): Promise<BenchOutcome> {
  const lines: string[] = [];
  await benchCommand(c, (l) => lines.push(l), () => {});
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as BenchOutcome;
}

describe('dpt bench (in-process group, real MNIST)', () => {
  const report = join(dir, 'report.html');
  let outcome: BenchOutcome;

  it('measures the baseline first and every cell on the same SGD trajectory', async () => {
    outcome = await bench(config({ report, whatIf: parseWhatIf('latency=500us,bandwidth=1Gbit,workers=8') }));
    expect(outcome.cells.map((c) => `${c.transport}x${c.workers}@${c.batch}`)).toEqual(['inprocx1@10', 'inprocx2@10', 'inprocx1@32', 'inprocx2@32']);
    for (const c of outcome.cells) {
      expect(c.summary.steps).toBe(15);
      expect(c.maxParamDiff).toBeLessThan(1e-5);
      expect(Math.abs(c.summary.coverage - 1)).toBeLessThan(0.05);
      if (c.workers === 1) expect(c.speedup).toBe(1);
    }
    // two logical workers in one thread run one after another: the profile must show it
    const two = outcome.cells.find((c) => c.workers === 2)!;
    expect(two.observation.concurrency).toBeLessThan(1.2);
    expect(outcome.model.transports['inproc']!.concurrent).toBe(false);
    expect(outcome.validation!.length).toBe(2);
    expect(outcome.breakEvens.length).toBe(2);
    expect(outcome.whatIf!.every((r) => r.workers === 8 && r.network !== null && Number.isFinite(r.speedup))).toBe(true);
  });

  it('interleaves repetitions of the cells and pools their measured steps', async () => {
    const o = await bench(config({ batches: [16], steps: 12, repeats: 3 }));
    for (const c of o.cells) {
      expect(c.summary.steps).toBe(12);
      expect(c.losses).toHaveLength(4); // the curve is one repetition's trajectory
      expect(c.maxParamDiff).toBeLessThan(1e-5);
    }
    expect(o.plan.repeats).toBe(3);
  });

  it('probes the lockstep compute at every shard the model reads: the cells\' and the what-if\'s 8 workers', () => {
    // batches 10 and 32 with 1, 2 (the cells) and 8 workers (the what-if): shards 10, 5, 2, 32, 16, 4
    const table = outcome.machine.lockstep['784-30-10']!;
    expect(Object.keys(table[1]!).map(Number)).toEqual([2, 4, 5, 10, 16, 32]);
    const atOnce = Math.min(2, outcome.machine.cores);
    if (atOnce > 1) expect(Object.keys(table[atOnce]!).map(Number)).toEqual([2, 4, 5, 16]);
    expect(outcome.model.lockstep).toEqual(outcome.machine.lockstep);
  });

  it('puts the answer first in the --json object, one row per measured cell with the cell\'s speedup', () => {
    expect(Object.keys(outcome)[0]).toBe('answer');
    const [a] = outcome.answer;
    expect(a!.net).toBe('784-30-10');
    expect(a!.rows.map((r) => [r.config, r.batch, r.speedup])).toEqual(outcome.cells.map((c) => [`${c.transport} x${c.workers}`, c.batch, c.speedup]));
    // in-process ranks take turns: no row may claim to pay off, and the advice says so
    expect(a!.rows.map((r) => r.paysOff)).toEqual([null, false, null, false]);
    const best = outcome.cells.filter((c) => c.workers > 1).reduce((x, y) => (y.speedup > x.speedup ? y : x));
    expect(a!.best).toEqual({ transport: best.transport, workers: best.workers, averageEvery: 1, wire: 'fp32', batch: best.batch });
    expect(a!.advice).toContain(`Stay on one node: no configuration measured ran its workers at the same time (the best, inproc x2 at batch ${best.batch},`);
  });

  it('leads the text with the answer, right after the header, in tables that fit 100 columns', () => {
    const lines = benchTables(outcome);
    expect(lines[0]).toMatch(/^dpt bench: /);
    expect(lines.slice(1, 3)).toEqual(['', 'Answer']);
    const detail = lines.indexOf('Detail');
    const answerLines = lines.slice(0, detail);
    const advice = answerLines.indexOf(outcome.answer[0]!.advice);
    expect(advice).toBeGreaterThan(0);
    // the table: its rows, in the text, show the same speedups as the cells of the JSON
    const rows = answerLines.filter((l) => /^inproc x\d/.test(l));
    expect(rows.map((l) => l.split(/ {2,}/)[3])).toEqual(outcome.cells.map((c) => fmtX(c.speedup)));
    for (const l of answerLines.slice(1, advice)) expect(l.length).toBeLessThanOrEqual(100);
    expect(lines.findIndex((l) => l.startsWith('784-30-10 ('))).toBeGreaterThan(detail);
    expect(lines.indexOf('Verdict')).toBeGreaterThan(detail);
  });

  it('ends with a verdict that states the core limit and the optimisation caveat', () => {
    const text = outcome.verdict.join('\n');
    expect(text).toMatch(/^784-30-10 at batch 10: (parallelism PAYS OFF|parallelism does NOT pay off|BREAK-EVEN)/m);
    expect(text).toMatch(/Break-even, inproc x2:/);
    expect(text).toMatch(/more than 2 workers cannot speed anything up here/);
    expect(text).toMatch(/different optimisation/);
    expect(text).toMatch(/ran its ranks one after another/);
  });

  it('says in --json, the text and the verdict that every configuration, the baseline too, ran on emulated hosts (inside dpt bench --emulate)', async () => {
    const emulated = { cpu: 0.5, bandwidthBitsPerS: 100e6, latencyMs: 1, netem: false, workerHosts: 2 };
    const o = await bench(config({ batches: [16], steps: 4, burnIn: 1, emulated }));
    expect(o.machine.emulated).toEqual(emulated);
    expect(benchTables(o)[1]).toMatch(/^On emulated hosts \(dpt bench --emulate: 0\.5 cores each, links of 100 Mbit\/s both ways, no latency added \(asked 1\.00 ms: this kernel has no sch_netem\)\): /);
    expect(o.verdict[0]).toBe('Verdict (every configuration on emulated hosts, the single-node baseline too: one emulated host alone)');
    expect(o.verdict.join('\n')).toMatch(/^Every host had 0\.5 cores, and the caps add up to at most this machine's/m);
    // a bench on this machine as it is says nothing of hosts
    expect(outcome.machine.emulated).toBeNull();
    expect(benchTables(outcome).join('\n')).not.toMatch(/emulated/i);
  });

  it('writes a self-contained HTML report with the charts', () => {
    const html = readFileSync(report, 'utf8');
    expect(html.match(/<svg /g)!.length).toBeGreaterThanOrEqual(6);
    for (const heading of ['Answer', 'Verdict in detail', 'Measured', 'Where the step goes', 'Speedup against workers', 'Model check', 'What if', 'Training curves']) expect(html).toContain(heading);
    // nothing to fetch: no scripts, stylesheets, images or fonts from elsewhere
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:\/\//);
  });

  const chromium = chromiumMissing();
  it('opens the report with the answer: the table and the advice before the verdict and the measured tables', () => {
    const html = readFileSync(report, 'utf8');
    const at = (text: string): number => html.indexOf(text);
    const advice = outcome.answer[0]!.advice.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    expect(at('<h2 id="answer">Answer</h2>')).toBeGreaterThan(at('<h1>'));
    expect(at('>pays off</th>') > at('<h2 id="answer">') && at('>pays off</th>') < at(advice)).toBe(true);
    expect(at(advice)).toBeLessThan(at('<h2>Verdict in detail</h2>'));
    expect(at('<h2>Verdict in detail</h2>')).toBeLessThan(at('<h2>Measured</h2>'));
  });

  it.skipIf(chromium !== null)(`lays out every table of the report inside a 1280 px page${skipNote(chromium)}`, () => {
    const { pageWidth, tableRights } = tableEdges(report, 1280);
    expect(tableRights.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...tableRights)).toBeLessThanOrEqual(pageWidth);
  });

  it.skipIf(chromium !== null)(`renders in headless Chromium${skipNote(chromium)}`, () => {
    const png = join(dir, 'report.png');
    expect(screenshot(report, png, '1200x1600')).toBeGreaterThan(20_000);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  });

  it('with --epochs measures time to accuracy on the full test set', async () => {
    const o = await bench(config({ base: { ...DEFAULTS, kernels: 'js', trainLimit: 300 }, batches: [30], epochs: 2 }));
    for (const c of o.cells) {
      expect(c.epochs.map((e) => e.epoch)).toEqual([1, 2]);
      expect(c.evalImages).toBe(10_000);
      expect(c.summary.steps).toBe(2 * 10 - 3);
      expect(c.epochs[1]!.seconds).toBeGreaterThan(c.epochs[0]!.seconds);
    }
    expect(o.cells[1]!.epochs.map((e) => e.accuracy)).toEqual(o.cells[0]!.epochs.map((e) => e.accuracy));
    expect(o.verdict.join('\n')).toMatch(/Time to \d+\.\d\d% test accuracy .*inproc x1 \d+\.\d s, inproc x2 \d+\.\d s/);
    // the answer leads with the time to the accuracy every configuration reached
    const [a] = o.answer;
    expect(a!.targetAccuracy).toBe(Math.min(...o.cells.map((c) => Math.max(...c.epochs.map((e) => e.accuracy)))));
    expect(a!.rows.every((r) => r.secondsToAccuracy !== null && r.secondsToAccuracy > 0)).toBe(true);
    const header = new RegExp(`^config +batch +time to ${(100 * a!.targetAccuracy!).toFixed(2)}% +speedup +pays off$`);
    expect(benchTables(o).some((l) => header.test(l))).toBe(true);
  });
});

describe('dpt bench --average-every (real MNIST, in-process group)', () => {
  const names = (o: BenchOutcome): string[] => o.cells.map((c) => `${c.transport} x${c.workers}${c.averageEvery > 1 ? ` K=${c.averageEvery}` : ''}`);

  it('with --epochs runs every K with more than one worker and carries K in the JSON, the answer and the verdict', async () => {
    const o = await bench(config({ base: { ...DEFAULTS, kernels: 'js', trainLimit: 300 }, batches: [30], epochs: 1, averageEvery: [1, 4] }));
    expect(names(o)).toEqual(['inproc x1', 'inproc x2', 'inproc x2 K=4']);
    // each configuration's own run: 10 steps of batch 30, less the 3 burn-in steps; K=4 records
    // rounds (4, 4 and the epoch's last 2 steps), less a burn-in of one round
    expect(o.cells.map((c) => c.summary.steps)).toEqual([7, 7, 2]);
    expect(o.plan.averageEvery).toEqual([1, 4]);
    expect(o.answer[0]!.rows.map((r) => [r.config, r.averageEvery])).toEqual([['inproc x1', 1], ['inproc x2', 1], ['inproc x2 K=4', 4]]);
    expect(o.verdict.join('\n')).toMatch(/inproc x2 K=4 \d+\.\d s/);
    expect(o.verdict.join('\n')).toMatch(/Local SGD \(K=4\) is a different optimisation/);
    // the cost model prices per-step averaging only: it is fitted and checked on those configurations
    expect(o.validation!.map((r) => `${r.cell.transport} x${r.cell.workers}`)).toEqual(['inproc x2']);
    expect(o.breakEvens.map((b) => `${b.transport} x${b.workers}`)).toEqual(['inproc x2']);
  });

  it('with --target-accuracy times every K over the seeds', async () => {
    const o = await bench(config({
      base: { ...DEFAULTS, kernels: 'js', trainLimit: 300 }, batches: [30], averageEvery: [1, 4], targetAccuracy: 0.3, maxEpochs: 1, seeds: [1, 2],
    }));
    expect(names(o)).toEqual(['inproc x1', 'inproc x2', 'inproc x2 K=4']);
    for (const c of o.cells) expect(c.timeToAccuracy!.seeds.map((s) => s.seed)).toEqual([1, 2]);
    expect(o.answer[0]!.rows.map((r) => r.averageEvery)).toEqual([1, 1, 4]);
    expect(o.verdict.join('\n')).toContain('Time to 30.0%, inproc x2 K=4: ');
  });
});

describe('dpt bench --target-accuracy (real MNIST, inproc and threads at 1 and 2 workers)', () => {
  const report = join(dir, 'tta.html');
  let o: BenchOutcome;

  it('trains every configuration and seed until the target, and the answer\'s times are the MLPerf means over seeds', async () => {
    o = await bench(config({
      base: { ...DEFAULTS, kernels: 'js', trainLimit: 1000 }, transports: ['inproc', 'threads'], batches: [10],
      targetAccuracy: 0.5, maxEpochs: 3, seeds: [1, 2, 3], report, whatIf: parseWhatIf('average-every=4,workers=2'),
    }));
    expect(o.cells.map((c) => `${c.transport} x${c.workers}`)).toEqual(['inproc x1', 'inproc x2', 'threads x1', 'threads x2']);
    const [a] = o.answer;
    expect(a!.targetAccuracy).toBe(0.5);
    for (const [i, c] of o.cells.entries()) {
      const t = c.timeToAccuracy!;
      expect(t.seeds.map((s) => s.seed)).toEqual([1, 2, 3]);
      const reached = t.seeds.filter((s) => s.seconds !== null).map((s) => s.seconds!).sort((x, y) => x - y);
      const kept = reached.length >= 3 ? reached.slice(1, -1) : reached;
      expect(t.meanSeconds).toBe(kept.length ? kept.reduce((x, y) => x + y, 0) / kept.length : null);
      expect(t.misses).toBe(3 - reached.length);
      expect(a!.rows[i]!.secondsToAccuracy).toBe(t.meanSeconds);
      expect(a!.rows[i]!.misses).toBe(t.misses);
      // a seed stops at the first epoch that reaches the target; the first seed's curve ends there
      for (const s of t.seeds) if (s.epochs !== null) expect(s.epochs).toBeLessThanOrEqual(3);
      const first = t.seeds[0]!;
      if (first.seconds !== null) {
        expect(c.epochs).toHaveLength(first.epochs!);
        expect(c.epochs.at(-1)!.seconds).toBe(first.seconds);
        expect(c.epochs.at(-1)!.accuracy).toBeGreaterThanOrEqual(0.5);
        expect(c.epochs.slice(0, -1).every((e) => e.accuracy < 0.5)).toBe(true);
      } else {
        expect(c.epochs).toHaveLength(3);
        expect(c.epochs.every((e) => e.accuracy < 0.5)).toBe(true);
      }
    }
    // every configuration of one seed starts from the same parameters and data order: one trajectory
    expect(o.cells[1]!.epochs.map((e) => e.accuracy)).toEqual(o.cells[0]!.epochs.map((e) => e.accuracy));
    expect(o.plan.seeds).toEqual([1, 2, 3]);
  });

  it('shows the same times and misses in the text, the verdict and the report', () => {
    const [a] = o.answer;
    const lines = benchTables(o);
    expect(lines).toContain(a!.advice);
    for (const l of lines.slice(1, lines.indexOf(a!.advice))) expect(l.length).toBeLessThanOrEqual(100);
    expect(lines.some((l) => /^config +batch +time to 50\.0% +vs one node +missed +pays off$/.test(l))).toBe(true);
    for (const r of a!.rows) {
      const row = lines.find((l) => l.startsWith(`${r.config} `) && l.includes(' of 3'))!;
      const secs = r.secondsToAccuracy === null ? 'never' : `${r.secondsToAccuracy.toFixed(r.secondsToAccuracy < 1 ? 2 : 1)} s`;
      expect(row.split(/ {2,}/).slice(2, 5)).toEqual([secs, expect.any(String), `${r.misses} of 3`]);
    }
    const verdict = o.verdict.join('\n');
    // the verdict leads with the same answer: by time to the target, pays off exactly where the advice says "Use"
    const headline = o.verdict.find((l) => l.startsWith('784-30-10 at batch 10: by time to 50.0%:'))!;
    expect(headline, verdict).toBeDefined();
    expect(headline.includes('PAYS OFF')).toBe(a!.advice.startsWith('Use '));
    for (const c of o.cells) {
      const t = c.timeToAccuracy!;
      expect(verdict).toContain(`Time to 50.0%, ${c.transport} x${c.workers}: ${t.meanSeconds === null ? 'never' : `${t.meanSeconds.toFixed(2)} s`}`);
      if (t.misses > 0) expect(verdict).toContain(`${t.misses} of 3 seeds missed 50.0% within 3 epochs`);
    }
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('<h2>Time to accuracy</h2>');
    expect(html).toContain(a!.advice.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
  });

  it('gives a what-if\'s time to the target as one node\'s measured epochs to it × the predicted epoch time, and says so', () => {
    const base = o.cells.find((c) => c.transport === 'inproc' && c.workers === 1)!.timeToAccuracy!;
    const epochs = meanEpochs(base);
    expect(o.whatIf!.map((r) => `${r.transport} x${r.workers} every ${r.averageEvery}`)).toEqual(['inproc x2 every 4', 'threads x2 every 4']);
    for (const r of o.whatIf!) {
      expect(r.epochSeconds).toBeCloseTo(Math.ceil(1000 / 10) * r.prediction.stepMs / 1000, 12);
      if (epochs === null) expect(r.timeToAccuracy).toBeNull();
      else expect(r.timeToAccuracy).toEqual({ target: 0.5, epochs, seconds: epochs * r.epochSeconds });
    }
    const lines = benchTables(o);
    expect(lines.find((l) => l.startsWith('What if'))).toMatch(/^What if: predicted by the model with average-every=4 \(local SGD: one exchange per 4 steps\), nothing on a wire \(shared memory\);/);
    expect(lines.some((l) => l.startsWith('to 50.0%: measured epochs to 50.0% × predicted epoch time'))).toBe(true);
  });

  it('refuses a target above 100%, a bare percentage, and flags that do not go together, naming them', () => {
    const err = (args: string[]) => { const r = dpt(['bench', ...args]); expect(r.code).not.toBe(0); return r.stderr; };
    expect(err(['--target-accuracy', '101%'])).toMatch(/--target-accuracy must be a fraction in \(0, 1\] .*got '101%': no run can reach more than 100%/);
    expect(err(['--target-accuracy', '95'])).toMatch(/--target-accuracy .*got '95' \(for 95 percent write 95%\)/);
    expect(err(['--target-accuracy', '0'])).toMatch(/--target-accuracy must be a fraction/);
    expect(err(['--target-accuracy', '0.9', '--epochs', '2'])).toMatch(/--target-accuracy and --epochs exclude each other/);
    expect(err(['--max-epochs', '5'])).toMatch(/--max-epochs needs --target-accuracy/);
    expect(err(['--seeds', '1,2'])).toMatch(/--seeds needs --target-accuracy/);
  });
});

describe('dpt bench --what-if with local SGD and a wire format', () => {
  it('lists average-every and wire in --help, with an example', () => {
    const r = dpt(['bench', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/\s+/g, ' ')).toMatch(/keys: latency, bandwidth, workers, batch, cores, cpu \(a host.s share of a core, as --emulate cpu=\), sizes, transport, average-every \(K steps per exchange: local SGD\), wire \(fp32, fp16, bf16: ws or a network\)/);
    expect(r.stdout).toContain('--what-if average-every=16,wire=bf16,workers=4,bandwidth=1Gbit');
  });

  it('refuses a bad K, an unknown format and a wire no measured transport has, before measuring anything', () => {
    const err = (spec: string) => { const r = dpt(['bench', '--what-if', spec]); expect(r.code).not.toBe(0); expect(r.stdout).toBe(''); return r.stderr; };
    expect(err('average-every=0')).toMatch(/--what-if 'average-every=0': average-every must be a whole number of steps per exchange, at least 1/);
    expect(err('wire=fp8')).toMatch(/wire must be fp32, fp16 or bf16, got 'fp8'/);
    expect(err('transport=threads,wire=bf16')).toMatch(/transport=threads sends nothing over a wire .*use transport=ws, or add bandwidth=/);
    // the default bench measures inproc and threads: nothing there has a wire
    expect(err('wire=bf16')).toMatch(/--what-if wire=bf16: none of the measured transports \(inproc, threads\) sends over a wire/);
  });
});

describe('dpt bench with no flags', () => {
  it('compares one node with two threads, whose workers can run at the same time, and says so in --help', () => {
    expect(BENCH_DEFAULTS.transports).toEqual(['inproc', 'threads']);
    expect(BENCH_DEFAULTS.workers).toEqual([1, 2]);
    const r = dpt(['bench', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\(default:\s+\["inproc","threads"\]\)/);
    expect(r.stdout).toMatch(/With no flags it compares one node \(inproc x1\) with two workers in a thread pool \(threads x2\)/);
  });
});
