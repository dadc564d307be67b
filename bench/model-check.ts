/**
 * The cost model's check, as a number to compare between two builds: runs a `dpt bench ... --json`
 * command (any build's: it reads only the `validation` rows every version prints — the model
 * fitted on the one-worker cells, predicting each multi-worker cell) and prints, per cell, the
 * measured and predicted speedup, the error, and how many cells the model got within 15%.
 * It reads only the JSON, so one build of it checks the output of any other build's bench.
 *
 *   node dist/bench/model-check.js [--save FILE] -- node dist/cli/dpt.js bench ... --json
 *   node dist/bench/model-check.js --from FILE        (a saved --json output, checked again)
 *   node dist/bench/model-check.js --summary FILE...  (one line per saved output, then the totals)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { median } from '../src/profile/stats.js';

/** A prediction counts as right when its speedup is within this share of the measured one. */
const TOLERANCE = 0.15;

/** The fields of a validation row this check reads (src/profile/analysis.ts ValidationRow). */
interface Row {
  cell: { transport: string; workers: number; batch: number; net: { sizes: number[] } };
  measuredSpeedup: number;
  predictedSpeedup: number;
  error: number;
}

interface Outcome {
  validation: Row[] | null;
  machine?: { load?: [number, number]; cores?: number };
}

const USAGE = 'usage: node dist/bench/model-check.js [--save FILE] -- COMMAND ... --json\n       node dist/bench/model-check.js --from FILE\n       node dist/bench/model-check.js --summary FILE...';

function fail(why: string): never {
  console.error(`model-check: ${why}\n${USAGE}`);
  process.exit(2);
}

/** The bench's stdout: its --json output is the last non-empty line. */
function parseOutcome(stdout: string, source: string): Outcome {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  let o: Outcome;
  try {
    o = JSON.parse(line) as Outcome;
  } catch {
    return fail(`${source} printed no JSON on its last line: run dpt bench with --json`);
  }
  if (!('validation' in o)) fail(`${source}'s JSON has no 'validation': is it dpt bench --json output?`);
  return o;
}

function runCommand(args: string[]): string {
  if (args.length === 0) fail('no command after --');
  // stderr (the bench's progress) goes straight through; stdout is the JSON
  const r = spawnSync(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error) fail(`could not run '${args[0]}': ${r.error.message}`);
  if (r.status !== 0) fail(`'${args.join(' ')}' exited with status ${r.status ?? r.signal}`);
  return r.stdout;
}

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;

function report(o: Outcome, source: string): void {
  const rows = o.validation ?? [];
  console.log(`model check of ${source}`);
  if (o.machine?.load) console.log(`load average ${o.machine.load[0].toFixed(1)} at the start, ${o.machine.load[1].toFixed(1)} at the end (${o.machine.cores ?? '?'} cores)`);
  const table = [['config', 'net', 'batch', 'measured speedup', 'predicted speedup', 'error', `within ${100 * TOLERANCE}%`],
    ...rows.map((r) => [`${r.cell.transport} x${r.cell.workers}`, r.cell.net.sizes.join('-'), String(r.cell.batch),
      `${r.measuredSpeedup.toFixed(2)}x`, `${r.predictedSpeedup.toFixed(2)}x`, pct(r.error), Math.abs(r.error) <= TOLERANCE ? 'yes' : 'no'])];
  const widths = table[0]!.map((_, j) => Math.max(...table.map((row) => row[j]!.length)));
  for (const row of table) console.log(row.map((v, j) => (j < 2 ? v.padEnd(widths[j]!) : v.padStart(widths[j]!))).join('  '));
  const within = rows.filter((r) => Math.abs(r.error) <= TOLERANCE).length;
  const worst = rows.reduce((a, r) => Math.max(a, Math.abs(r.error)), 0);
  console.log(`within ${100 * TOLERANCE}%: ${within} of ${rows.length} configurations; largest |error| ${(100 * worst).toFixed(1)}%`);
}

/** One line per saved run (its errors by configuration), then the totals: how two builds compare over many runs. */
function summary(files: string[]): void {
  const all: Row[] = [];
  const short = (r: Row) => `${r.cell.transport[0]}${r.cell.workers}/${r.cell.batch}`;
  for (const f of files) {
    const o = parseOutcome(readFileSync(f, 'utf8'), f);
    const rows = o.validation ?? [];
    all.push(...rows);
    const within = rows.filter((r) => Math.abs(r.error) <= TOLERANCE).length;
    const load = o.machine?.load ? `load ${o.machine.load[0].toFixed(1)}→${o.machine.load[1].toFixed(1)}  ` : '';
    console.log(`${f.replace(/^.*\//, '').replace(/\.json$/, '').padEnd(10)} ${load}${within}/${rows.length} within ${100 * TOLERANCE}%  ${rows.map((r) => `${short(r)} ${pct(r.error)}`).join('  ')}`);
  }
  const errs = all.map((r) => Math.abs(r.error)).sort((a, b) => a - b);
  const count = (t: number) => errs.filter((e) => e <= t).length;
  console.log(`${files.length} runs, ${errs.length} configurations: ${count(TOLERANCE)} within ${100 * TOLERANCE}%, ${count(0.25)} within 25%; ` +
    `median |error| ${(100 * median(errs)).toFixed(1)}%, largest ${(100 * (errs.at(-1) ?? NaN)).toFixed(1)}%`);
}

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const own = dash < 0 ? argv : argv.slice(0, dash);
const flag = (name: string): string | null => {
  const i = own.indexOf(name);
  if (i < 0) return null;
  return own[i + 1] ?? fail(`${name} needs a file name`);
};
const summaryAt = own.indexOf('--summary');
const from = flag('--from');
const save = flag('--save');
if (summaryAt >= 0) {
  const files = own.slice(summaryAt + 1);
  if (files.length === 0) fail('--summary needs the saved outputs (--save FILE) to summarise');
  summary(files);
} else if (from !== null) {
  report(parseOutcome(readFileSync(from, 'utf8'), from), from);
} else {
  if (dash < 0) fail('give the bench command after --');
  const command = argv.slice(dash + 1);
  const stdout = runCommand(command);
  const o = parseOutcome(stdout, command.join(' '));
  if (save !== null) writeFileSync(save, stdout);
  report(o, command.join(' '));
}
