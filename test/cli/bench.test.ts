import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchCommand } from '../../cli/bench.js';
import { DEFAULTS, type BenchConfig } from '../../src/config.js';
import type { BenchOutcome } from '../../src/profile/outcome.js';
import { parseWhatIf } from '../../src/profile/what-if.js';
import { screenshot } from '../../bench/report-screenshot.js';
import { chromiumMissing, skipNote } from '../helpers/environment.js';

const dir = mkdtempSync(join(tmpdir(), 'dpt-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(o: Partial<BenchConfig>): BenchConfig {
  return {
    base: { ...DEFAULTS, kernels: 'js', trainLimit: 1000 }, nets: [[784, 30, 10]], transports: ['inproc'], workers: [1, 2],
    batches: [10, 32], steps: 15, burnIn: 3, repeats: 1, epochs: null, evalLimit: 100, whatIf: null, report: null, json: true, ...o,
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

  it('ends with a verdict that states the core limit and the optimisation caveat', () => {
    const text = outcome.verdict.join('\n');
    expect(text).toMatch(/^784-30-10 at batch 10: (parallelism PAYS OFF|parallelism does NOT pay off|BREAK-EVEN)/m);
    expect(text).toMatch(/Break-even, inproc x2:/);
    expect(text).toMatch(/more than 2 workers cannot speed anything up here/);
    expect(text).toMatch(/different optimisation/);
    expect(text).toMatch(/ran its ranks one after another/);
  });

  it('writes a self-contained HTML report with the charts', () => {
    const html = readFileSync(report, 'utf8');
    expect(html.match(/<svg /g)!.length).toBeGreaterThanOrEqual(6);
    for (const heading of ['Verdict', 'Where the step goes', 'Speedup against workers', 'Model check', 'What if', 'Training curves']) expect(html).toContain(heading);
    // nothing to fetch: no scripts, stylesheets, images or fonts from elsewhere
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:\/\//);
  });

  const chromium = chromiumMissing();
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
  });
});
