/**
 * The exchange floor of the thread pool: zero-compute rounds (publish the parameters, N workers
 * each copy them into their own buffer and hand back a gradient-sized buffer, the coordinator
 * adds the N buffers in rank order), median µs per round, for the ways a piscina pool can move
 * the tensors. The thread group keeps the fastest that leaves piscina in charge of every step.
 * Usage: node dist/bench/threads-exchange.js [--rounds 300]
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { parsePositiveInt } from '../src/config.js';
import { median } from '../src/profile/stats.js';
import { DONE, GEN, STOP, type ExchangeSetup, type ExchangeTask } from './threads-exchange-task.js';

const SIZES = [
  { label: '95 KB (784-30-10)', n: 23_860 },
  { label: '1.08 MB (784-256-256-10)', n: 269_322 },
];
const VARIANTS = ['shared', 'transfer', 'clone', 'resident'] as const;
type Variant = (typeof VARIANTS)[number];

// Atomics.waitAsync is in Node 20 but not in the ES2022 lib this project compiles against
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { value: Promise<string> | string } }).waitAsync;

function addInto(y: Float32Array, x: Float32Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += x[i]!;
}

async function measure(variant: Variant, n: number, world: number, rounds: number): Promise<number> {
  const setup: ExchangeSetup = {
    params: new Float32Array(new SharedArrayBuffer(n * 4)),
    grads: new Float32Array(new SharedArrayBuffer(world * n * 4)),
    control: new Int32Array(new SharedArrayBuffer(12)),
    n,
  };
  const pool = new Piscina({
    filename: fileURLToPath(new URL('./threads-exchange-task.js', import.meta.url)),
    minThreads: world, maxThreads: world, idleTimeout: 2 ** 31 - 1, workerData: setup,
  });
  const params = new Float32Array(n).fill(0.5);
  const sum = new Float32Array(n);
  const times: number[] = [];
  const c = setup.control;
  let residents: Promise<unknown>[] = [];
  if (variant === 'resident') {
    residents = Array.from({ length: world }, (_, rank) => pool.run({ kind: 'resident', rank } satisfies ExchangeTask));
    let ready = 0;
    while ((ready = Atomics.load(c, DONE)) < world) await waitAsync(c, DONE, ready).value;
  }
  else await Promise.all(Array.from({ length: world }, (_, rank) => pool.run({ kind: 'shared', rank } satisfies ExchangeTask)));
  for (let round = 0; round < rounds + 20; round++) {
    const t0 = performance.now();
    const grads: Float32Array[] = [];
    if (variant === 'shared' || variant === 'resident') {
      setup.params.set(params);
      if (variant === 'shared') {
        await Promise.all(Array.from({ length: world }, (_, rank) => pool.run({ kind: 'shared', rank } satisfies ExchangeTask)));
      } else {
        Atomics.store(c, DONE, 0);
        Atomics.add(c, GEN, 1);
        Atomics.notify(c, GEN);
        let done = 0;
        while ((done = Atomics.load(c, DONE)) < world) await waitAsync(c, DONE, done).value;
      }
      for (let r = 0; r < world; r++) grads.push(setup.grads.subarray(r * n, (r + 1) * n));
    } else {
      const replies = await Promise.all(Array.from({ length: world }, (_, rank) => {
        if (variant === 'transfer') {
          const copy = new Float32Array(params);
          return pool.run({ kind: 'transfer', rank, params: copy } satisfies ExchangeTask, { transferList: [copy.buffer] });
        }
        return pool.run({ kind: 'clone', rank, params } satisfies ExchangeTask);
      }));
      grads.push(...(replies as Float32Array[]));
    }
    sum.fill(0);
    for (const g of grads) addInto(sum, g);
    if (round >= 20) times.push((performance.now() - t0) * 1000);
    if (sum[n - 1] !== 0.5 * world) throw new Error(`${variant}: wrong sum ${sum[n - 1]}`);
  }
  if (variant === 'resident') {
    Atomics.store(c, STOP, 1);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    await Promise.all(residents);
  }
  await pool.destroy();
  return median(times);
}

async function main(): Promise<void> {
  let rounds = 300;
  const argv = process.argv.slice(2);
  if (argv[0] === '--rounds') rounds = parsePositiveInt('--rounds', argv[1] ?? '');
  else if (argv.length > 0) throw new Error(`unknown option ${argv[0]}: use --rounds N`);
  console.log(`bench/threads-exchange: ${cpus().length} CPUs, Node ${process.version}, ${rounds} rounds after 20 burn-in, median µs per zero-compute round`);
  console.log('');
  const head = ['tensor', 'N', ...VARIANTS];
  const rows: string[][] = [];
  for (const size of SIZES) {
    for (const world of [1, 2]) {
      const cells = [size.label, String(world)];
      for (const v of VARIANTS) {
        cells.push((await measure(v, size.n, world, size.n > 100_000 ? Math.ceil(rounds / 3) : rounds)).toFixed(0));
      }
      rows.push(cells);
    }
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ');
  console.log(line(head));
  console.log(w.map((x) => '-'.repeat(x)).join('  '));
  for (const r of rows) console.log(line(r));
}

await main();
