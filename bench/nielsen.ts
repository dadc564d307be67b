/**
 * Reproduces chapter 1 of Nielsen's book: the default network (784-30-10, sigmoid, quadratic
 * cost, SGD, mini-batch 10, eta 3.0) trained for 30 epochs on the first 50,000 MNIST training
 * images, tested on the 10,000 t10k images. The book reports about 95% (95.42% best); we require
 * at least 95.0% best.
 *
 *   node dist/bench/nielsen.js [--epochs 30] [--seed 1] [--kernels auto]
 */
import { cpus } from 'node:os';
import { DEFAULTS, parseKernels, parseNonNegativeInt, parsePositiveInt } from '../src/config.js';
import { trainCommand } from '../cli/train.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const epochs = parsePositiveInt('--epochs', flag('--epochs', '30'));
const seed = parseNonNegativeInt('--seed', flag('--seed', '1'));
const kernels = parseKernels(flag('--kernels', 'auto'));

console.log(`# Nielsen chapter 1 reproduction: ${epochs} epochs, seed ${seed}`);
console.log(`# machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}`);
const result = await trainCommand({ ...DEFAULTS, epochs, seed, kernels }, (line) => console.log(line));
const best = result.best!;
const final = result.epochs.at(-1)!;
const pct = (c: number) => ((100 * c) / final.testTotal).toFixed(2);
const seconds = result.epochs.reduce((a, e) => a + e.trainSeconds, 0);
console.log('');
console.log(`best   ${best.testCorrect} / ${best.testTotal} = ${pct(best.testCorrect)}% (epoch ${best.epoch})   book: 95.42% best`);
console.log(`final  ${final.testCorrect} / ${final.testTotal} = ${pct(final.testCorrect)}%`);
console.log(`train  ${seconds.toFixed(1)} s in total, ${(seconds / result.epochs.length).toFixed(2)} s per epoch`);
const pass = 100 * best.testCorrect / best.testTotal >= 95.0;
console.log(`target best >= 95.00%: ${pass ? 'MET' : 'NOT MET'}`);
process.exitCode = pass || epochs < 30 ? 0 : 1;
