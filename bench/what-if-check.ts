/**
 * The what-if against emulated hosts: the cost model a plain loopback run fitted, asked `--what-if
 * bandwidth=B,cpu=C` about every multi-worker ws configuration that `dpt bench --emulate
 * cpu=C,bandwidth=B` measured, its speedups side by side with the measured ones. Both files are the --json output of those runs (other lines, such as the launcher's, are
 * skipped); the loopback run should probe the shards the emulated one ran (--what-if workers=...).
 *
 *   node dist/bench/what-if-check.js LOOPBACK.json EMULATED.json [--within 0.2]
 */
import { readFileSync } from 'node:fs';
import { fitsTheModel, type BenchOutcome } from '../src/profile/outcome.js';
import { baselineOf, netKey, whatIf } from '../src/profile/analysis.js';
import { parseWhatIf } from '../src/profile/what-if.js';
import { fmtMs, fmtX, textTable } from '../src/profile/format.js';

function outcomeOf(file: string): BenchOutcome {
  const line = readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`${file}: no JSON line in it (run dpt bench with --json)`);
  return JSON.parse(line) as BenchOutcome;
}

const args = process.argv.slice(2);
const files = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--within');
const within = args.includes('--within') ? Number(args[args.indexOf('--within') + 1]) : 0.2;
if (files.length !== 2 || !(within > 0)) {
  console.error('usage: node dist/bench/what-if-check.js LOOPBACK.json EMULATED.json [--within 0.2]');
  process.exit(2);
}
const loopback = outcomeOf(files[0]!);
const emulated = outcomeOf(files[1]!);
const hosts = emulated.machine.emulated;
if (!hosts || hosts.bandwidthBitsPerS === null) throw new Error(`${files[1]}: it was not measured on emulated hosts with shaped links (run dpt bench --emulate cpu=C,bandwidth=B)`);
if (loopback.machine.emulated) throw new Error(`${files[0]}: it was measured on emulated hosts; the what-if should come from plain loopback runs`);

// the model the loopback run fitted (its --json holds it), asked the emulated hosts' question
const loopbackCells = loopback.cells.filter(fitsTheModel).map((c) => c.observation);
const emulatedCells = emulated.cells.filter(fitsTheModel);
const asked = emulatedCells.filter((c) => c.transport === 'ws' && c.workers > 1);
const question = `bandwidth=${hosts.bandwidthBitsPerS / 1e6}Mbit${hosts.cpu !== null ? `,cpu=${hosts.cpu}` : ''}`;

const rows: string[][] = [];
let inside = 0;
for (const m of asked) {
  const w = { ...parseWhatIf(question), workers: [m.workers], batch: [m.batch], sizes: m.net.sizes, transport: 'ws' };
  const p = whatIf(loopback.model, loopbackCells, w, { trainCount: loopback.plan.trainCount, momentum: loopback.plan.momentum > 0 })[0]!;
  const error = p.speedup / m.speedup - 1;
  if (Math.abs(error) <= within) inside++;
  rows.push([`ws x${m.workers}`, netKey(m.net), String(m.batch), fmtMs(p.prediction.stepMs), fmtMs(m.observation.stepMs),
    fmtMs(p.baselineMs), fmtMs(baselineOf(emulatedCells.map((c) => c.observation), m.net, m.batch)?.stepMs ?? NaN),
    fmtX(p.speedup), fmtX(m.speedup), `${error >= 0 ? '+' : ''}${(error * 100).toFixed(1)}%`]);
}
console.log(`--what-if ${question} from the loopback run ${files[0]} against the emulated hosts measured in ${files[1]}:`);
for (const line of textTable([['config', 'net', 'batch', 'step: what-if', 'emulated', 'one host: what-if', 'emulated', 'speedup: what-if', 'emulated', 'error'], ...rows])) console.log(line);
console.log(`${inside} of ${asked.length} predicted speedups within ${(within * 100).toFixed(0)}% of the measured ones`);
