/**
 * What a lighter wire costs in accuracy and saves in bytes: the same run over WebSocket worker
 * processes once per --wire format, from the same seed, each trained for the whole schedule
 * (by default Nielsen's chapter-1 network, 30 epochs, two ranks). Prints the best and final test
 * accuracy, the final accuracy's distance from fp32's, and the bytes every step put on the wire.
 * The targets: 16-bit formats end within 0.2 points of fp32 and halve the bytes.
 *
 *   node dist/bench/wire.js [--epochs 30] [--workers 2] [--seed 1] [--formats fp32,fp16,bf16] [--average-every 1]
 */
import { DEFAULTS, parseList, parsePositiveInt, parseNonNegativeInt, parseWire, type TrainConfig } from '../src/config.js';
import { stepsPerEpoch } from '../src/data/batches.js';
import { Profiler } from '../src/profile/profiler.js';
import { openSession, startGroup, trainingRun } from '../coordinator/session.js';
import { runTraining } from '../coordinator/trainer.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const epochs = parsePositiveInt('--epochs', flag('--epochs', '30'));
const workers = parsePositiveInt('--workers', flag('--workers', '2'));
const seed = parseNonNegativeInt('--seed', flag('--seed', '1'));
const averageEvery = parsePositiveInt('--average-every', flag('--average-every', '1'));
const formats = parseList('--formats', flag('--formats', 'fp32,fp16,bf16'), parseWire);

interface Outcome { wire: string; best: number; final: number; bytesPerStep: number; secondsPerEpoch: number }

async function trainWith(wire: TrainConfig['wire']): Promise<Outcome> {
  const config: TrainConfig = { ...DEFAULTS, transport: 'ws', workers, wire, epochs, seed, averageEvery };
  const session = await openSession(config);
  const group = await startGroup(session);
  try {
    const run = trainingRun(session, group);
    const profiler = new Profiler(group.world, 0, epochs * stepsPerEpoch(session.train.count, config.batch));
    run.profiler = profiler;
    const result = await runTraining(run);
    let bytes = 0;
    for (const step of profiler.steps()) for (const r of step.ranks) bytes += r.bytesSent + r.bytesReceived;
    const final = result.epochs.at(-1)!;
    const pct = (c: number) => (100 * c) / final.testTotal;
    return {
      wire, best: pct(result.best!.testCorrect), final: pct(final.testCorrect), bytesPerStep: bytes / result.steps,
      secondsPerEpoch: result.epochs.reduce((a, e) => a + e.trainSeconds, 0) / result.epochs.length,
    };
  } finally {
    await group.close();
  }
}

console.log(`# --wire formats: ${DEFAULTS.spec.sizes.join('-')}, batch ${DEFAULTS.batch}, eta ${DEFAULTS.eta}, ${epochs} epochs, ws x${workers}, --average-every ${averageEvery}, seed ${seed}`);
const outcomes: Outcome[] = [];
for (const wire of formats) {
  const o = await trainWith(wire);
  outcomes.push(o);
  console.log(`# ${wire} done: final ${o.final.toFixed(2)}%`);
}
const base = outcomes.find((o) => o.wire === 'fp32') ?? null;
console.log('');
console.log('wire   best %   final %   vs fp32 (points)   KiB/step on the wire   vs fp32   s/epoch');
let pass = true;
for (const o of outcomes) {
  const points = base === null ? NaN : o.final - base.final;
  const bytesRatio = base === null ? NaN : o.bytesPerStep / base.bytesPerStep;
  if (o.wire !== 'fp32' && base !== null && (Math.abs(points) > 0.2 || bytesRatio > 0.55)) pass = false;
  console.log(`${o.wire.padEnd(6)} ${o.best.toFixed(2).padStart(6)}   ${o.final.toFixed(2).padStart(7)}   ${(o.wire === 'fp32' ? '-' : points.toFixed(2)).padStart(16)}   ${(o.bytesPerStep / 1024).toFixed(1).padStart(20)}   ${(o.wire === 'fp32' ? '-' : `${bytesRatio.toFixed(3)}x`).padStart(7)}   ${o.secondsPerEpoch.toFixed(2).padStart(7)}`);
}
if (base !== null && outcomes.length > 1) {
  console.log(`target 16-bit final within 0.2 points of fp32 and at most 0.55x its bytes: ${pass ? 'MET' : 'NOT MET'}`);
}
process.exitCode = pass ? 0 : 1;
