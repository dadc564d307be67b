/**
 * What two WebSocket worker processes cost beyond one, at the same shard: the part of a ws x2 step
 * that no one-worker run shows, which is why the cost model (fitted on one-worker cells) cannot
 * predict it on a machine with fewer cores than worker processes + the coordinator.
 *
 * Three configurations take turns in blocks of 8 steps in one run (the first 200 steps of each are warm-up):
 *   ws x1            one worker process, batch = the shard
 *   ws x1 + busy     the same, with every other core kept busy by a spinning thread (the CPU a
 *                    second rank would take, without a second exchange)
 *   ws x2            two worker processes, batch = 2 × the shard (each rank computes the shard)
 * and prints, per configuration, the median step, the slower rank's compute, the round trip beyond the
 * worker's own time, and the coordinator's CPU per step (process.cpuUsage; not for the busy configuration,
 * whose spinner is in this process). The cost model adds the coordinator's CPU per extra rank
 * (σ + encode/decode) to ws x1's step; what ws x2 takes beyond that is the sharing of the cores.
 *
 *   node dist/bench/ws-sharing.js [--net large|small] [--shard 512] [--turns 20] [--kernels auto]
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BLOCK, takeTurns } from './harness/side-by-side.js';
import { startWsGroup } from '../coordinator/launch.js';
import { openSession } from '../coordinator/session.js';
import { trainStep } from '../coordinator/trainer.js';
import type { ShardResult, WorkerGroup } from '../coordinator/worker-group.js';
import { DEFAULTS, parseChoice, parseKernels, parsePositiveInt, type KernelChoice, type TrainConfig } from '../src/config.js';
import { batchIndices, epochPermutation, stepsPerEpoch } from '../src/data/batches.js';
import { loadMnist } from '../src/data/mnist.js';
import type { Network } from '../src/model/network.js';
import type { NetworkSpec } from '../src/model/spec.js';
import { Sgd } from '../src/optim/sgd.js';
import { Rng } from '../src/tensor/rng.js';
import { median } from '../src/profile/stats.js';

const NETS: Record<string, { spec: NetworkSpec; init: TrainConfig['init']; eta: number }> = {
  small: { spec: { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' }, init: 'gaussian', eta: 3 },
  large: { spec: { sizes: [784, 256, 256, 10], activation: 'relu', cost: 'cross-entropy' }, init: 'scaled', eta: 0.1 },
};
/** a new ws session's steps get faster over its first ~200 (bench/ws.ts MIN_BURN_IN) */
const WARM_UP = 200;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : process.argv[i + 1] ?? '';
}
/** A bad flag: its message and the usage, no stack trace. */
function fail(e: unknown): never {
  console.error(`ws-sharing: ${e instanceof Error ? e.message : String(e)}\nusage: node dist/bench/ws-sharing.js [--net large|small] [--shard 512] [--turns 20] [--kernels auto]`);
  process.exit(2);
}
const { net, shard, turns, kernels } = ((): { net: (typeof NETS)[string]; shard: number; turns: number; kernels: KernelChoice } => {
  try {
    return {
      net: NETS[parseChoice('--net', flag('--net', 'large'), ['large', 'small'] as const)]!,
      shard: parsePositiveInt('--shard', flag('--shard', '512')),
      turns: parsePositiveInt('--turns', flag('--turns', '20')),
      kernels: parseKernels(flag('--kernels', 'auto')),
    };
  } catch (e) {
    return fail(e);
  }
})();
const cores = availableParallelism();

/** Threads that spin while `on[0]` is 1 and sleep otherwise: the other cores kept busy. */
class Spinners {
  private readonly on = new Int32Array(new SharedArrayBuffer(4));
  private readonly threads: Worker[];
  constructor(n: number) {
    const code = `const { workerData: on } = require('node:worker_threads'); let x = 0;
      for (;;) { if (Atomics.load(on, 0) === 1) { for (let i = 0; i < 1e5; i++) x += Math.sqrt(i); } else Atomics.wait(on, 0, 0); }`;
    this.threads = Array.from({ length: n }, () => new Worker(code, { eval: true, workerData: this.on }));
  }
  set(busy: boolean): void {
    Atomics.store(this.on, 0, busy ? 1 : 0);
    Atomics.notify(this.on, 0);
  }
  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.terminate()));
  }
}

interface Configuration {
  label: string;
  batch: number;
  busy: boolean;
  group: WorkerGroup;
  network: Network;
  params: Float32Array;
  gradSum: Float32Array;
  sgd: Sgd;
  step: number[];
  compute: number[];
  exchange: number[];
  cpu: number[];
}

const ms = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : '–');

async function main(): Promise<void> {
  const mnist = loadMnist();
  if (2 * shard > mnist.train.count) {
    throw new RangeError(`--shard ${shard}: ws x2 would train batches of ${2 * shard} of the ${mnist.train.count} training images; use --shard ${Math.floor(mnist.train.count / 2)} or less`);
  }
  const spinners = new Spinners(Math.max(1, cores - 1));
  const configurations: Configuration[] = [];
  try {
    for (const [label, workers, busy] of [['ws x1', 1, false], ['ws x1 + busy cores', 1, true], ['ws x2', 2, false]] as const) {
      const batch = shard * workers;
      // --average-only: this program measures worker processes sharing the cores with a coordinator that only averages
      const config: TrainConfig = { ...DEFAULTS, spec: net.spec, init: net.init, eta: net.eta, batch, transport: 'ws', workers, averageOnly: true, kernels };
      const s = await openSession(config, mnist);
      const group = await startWsGroup(config, s.train, () => {}, s.kernels);
      const sgd = new Sgd(s.network.layout, s.kernels, { eta: net.eta, momentum: 0, weightDecay: 0, trainSize: s.train.count });
      configurations.push({ label, batch, busy, group, network: s.network, params: s.params, gradSum: s.network.allocParams(), sgd, step: [], compute: [], exchange: [], cpu: [] });
    }
    const perm = epochPermutation(mnist.train.count, new Rng(1), true);
    const run = async (configuration: Configuration, s: number, record: boolean): Promise<void> => {
      let replies: ShardResult[] = [];
      const group: WorkerGroup = { ...configuration.group, computeStep: async (req) => (replies = await configuration.group.computeStep(req)) };
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await trainStep({ network: configuration.network, sgd: configuration.sgd, group, params: configuration.params }, configuration.gradSum, s,
        batchIndices(perm, s % stepsPerEpoch(mnist.train.count, configuration.batch), configuration.batch));
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (!record) return;
      const own = replies.map((r) => r.timing.loadMs + r.timing.computeMs);
      configuration.step.push(wall);
      configuration.compute.push(Math.max(...own));
      configuration.exchange.push(median(replies.map((r, k) => r.receivedAt - r.sentAt - own[k]!)));
      configuration.cpu.push((cpu.user + cpu.system) / 1000);
    };
    process.stderr.write(`${configurations.length} configurations taking turns of ${BLOCK} steps: ${WARM_UP} warm-up and ${turns * BLOCK} measured steps each...\n`);
    // takeTurns leaves out the first step back after the others' turns (index -1): a wake-up real
    // training never pays. The spinners run during the busy configuration's steps only.
    await takeTurns(configurations, WARM_UP + turns * BLOCK, BLOCK, async (configuration, s, index) => {
      spinners.set(configuration.busy);
      await run(configuration, s, index >= WARM_UP);
    });
  } finally {
    spinners.set(false);
    await spinners.close();
    for (const configuration of configurations) await configuration.group.close();
  }
  report(configurations);
}

function report(configurations: Configuration[]): void {
  const [one, busy, two] = configurations as [Configuration, Configuration, Configuration];
  console.log(`${net.spec.sizes.join('-')}, shard ${shard} per rank, ${cores} cores, ${turns} turns of ${BLOCK} steps per configuration (medians)`);
  console.log(`${'configuration'.padEnd(20)} ${'batch'.padStart(6)} ${'step'.padStart(10)} ${'compute'.padStart(10)} ${'exchange'.padStart(10)} ${'coord CPU'.padStart(10)}`);
  for (const l of configurations) {
    console.log(`${l.label.padEnd(20)} ${String(l.batch).padStart(6)} ${ms(median(l.step)).padStart(10)} ${ms(median(l.compute)).padStart(10)} ` +
      `${ms(median(l.exchange)).padStart(10)} ${(l.busy ? '–' : ms(median(l.cpu))).padStart(10)}`);
  }
  const base = median(one.step);
  const perRank = median(one.cpu);
  const extra = median(two.step) - base;
  const processes = two.group.world + 1;
  console.log(`ws x2 takes ${ms(extra)} more than ws x1 at the same shard (${(median(two.step) / base).toFixed(2)}x). ` +
    `The coordinator's CPU per step in ws x1 is ${ms(perRank)}: about what the cost model adds for each further rank (σ, its encode/decode, the update). ` +
    `The other ${ms(extra - perRank)} is what no one-worker run shows: ${processes} processes sharing ${cores} cores` +
    `${processes > cores ? '' : ' (here every process has a core: expect it near 0)'}.`);
  console.log(`Keeping the other core${cores > 2 ? 's' : ''} busy without a second exchange: ${ms(median(busy.step) - base)} (${(median(busy.step) / base).toFixed(2)}x).`);
  console.log(`Compute of the slower rank: ${ms(median(two.compute))} in ws x2 against ${ms(median(one.compute))} alone (${(median(two.compute) / median(one.compute)).toFixed(2)}x); ` +
    `exchange beyond the worker's time: ${ms(median(two.exchange))} against ${ms(median(one.exchange))}.`);
}

await main().catch(fail);
process.exit(0);
