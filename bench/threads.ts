/**
 * Single-node vs the piscina thread pool with 1 and 2 workers: seconds per epoch for 784-30-10
 * (sigmoid, quadratic) and 784-256-256-10 (relu, cross-entropy, scaled init) at mini-batch 10,
 * 128 and 1024, with speedup = single / threads, all measured in this one run. Epochs are
 * PARTIAL: a fixed number of steps after burn-in, timed, and scaled to the 5,000-step (batch 10)
 * to 49-step (batch 1024) epoch of 50,000 images; each figure is the median over --reps
 * repetitions, the configurations taking turns in blocks of 8 steps so that load from other processes hits them alike. Before a time is
 * printed, every configuration's parameters after the same steps are compared with single-node's.
 * Then one real epoch of the default network, single-node vs threads x 2 (and in-process x 2),
 * same seed, compares test accuracy. Usage: node dist/bench/threads.js [--reps 3] [--kernels auto] [--skip-accuracy | --accuracy-only]
 * [--net small|large] [--batch N]
 */
import { cpus } from 'node:os';
import { maxAbsDiff } from '../coordinator/equivalence.js';
import { InProcessGroup } from '../coordinator/inproc-group.js';
import { openSession, startGroup, trainingRun } from '../coordinator/session.js';
import { BLOCK, takeTurns } from './harness/side-by-side.js';
import { ThreadGroup } from '../coordinator/thread-group.js';
import { shareImages } from '../worker/thread-memory.js';
import { runTraining, trainStep } from '../coordinator/trainer.js';
import type { WorkerGroup } from '../coordinator/worker-group.js';
import { DEFAULTS, parseChoice, parseKernels, parsePositiveInt, type KernelChoice } from '../src/config.js';
import { batchIndices, epochPermutation, stepsPerEpoch } from '../src/data/batches.js';
import type { LabelledImages } from '../src/data/idx.js';
import { loadMnist, type Mnist } from '../src/data/mnist.js';
import { initParams, type InitScheme } from '../src/model/init.js';
import { Network } from '../src/model/network.js';
import type { NetworkSpec } from '../src/model/spec.js';
import { Sgd } from '../src/optim/sgd.js';
import { measureLockstep } from './harness/lockstep.js';
import { createKernels } from '../src/tensor/engines.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { Rng } from '../src/tensor/rng.js';
import { median } from '../src/profile/stats.js';

interface NetCase {
  label: string;
  spec: NetworkSpec;
  init: InitScheme;
  eta: number;
  /** examples timed per measurement: enough for a stable median, few enough for minutes in all */
  examples: number;
}

const NETS: NetCase[] = [
  { label: '784-30-10 sigmoid/quadratic', spec: { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' }, init: 'gaussian', eta: 3.0, examples: 3000 },
  { label: '784-256-256-10 relu/CE', spec: { sizes: [784, 256, 256, 10], activation: 'relu', cost: 'cross-entropy' }, init: 'scaled', eta: 0.1, examples: 2048 },
];
const BATCHES = [10, 128, 1024];
/** timed steps per configuration and repetition, whatever the batch (49 steps make a whole epoch at 1024) */
const MIN_TIMED_STEPS = 24;
/** untimed steps first: the threads' engines copy the training images on start, and V8 optimises the per-step code over the first tens of steps */
const MIN_BURN_IN = 24;
const MODES = [
  { label: 'single', transport: 'inproc', world: 1 },
  { label: 'threads x1', transport: 'threads', world: 1 },
  { label: 'threads x2', transport: 'threads', world: 2 },
] as const;

interface Args { reps: number; kernels: KernelChoice; accuracy: boolean; throughput: boolean; nets: NetCase[]; batches: number[] }

function parseArgs(argv: string[]): Args {
  const a: Args = { reps: 3, kernels: 'auto', accuracy: true, throughput: true, nets: NETS, batches: BATCHES };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--reps') a.reps = parsePositiveInt('--reps', argv[++i] ?? '');
    else if (flag === '--kernels') a.kernels = parseKernels(argv[++i] ?? '');
    else if (flag === '--skip-accuracy') a.accuracy = false;
    else if (flag === '--accuracy-only') a.throughput = false;
    // one cell of the table, e.g. to rerun the case that matters on a quiet machine: --net large --batch 1024
    else if (flag === '--net') a.nets = [NETS[parseChoice('--net', argv[++i] ?? '', ['small', 'large'] as const) === 'small' ? 0 : 1]!];
    else if (flag === '--batch') a.batches = [parsePositiveInt('--batch', argv[++i] ?? '')];
    else throw new Error(`unknown option ${flag}: use --reps N, --kernels auto|js|wasm|blas, --skip-accuracy, --accuracy-only, --net small|large, --batch N`);
  }
  return a;
}

interface ModeRun {
  group: WorkerGroup;
  params: Float32Array;
  sgd: Sgd;
  gradSum: Float32Array;
  stepMs: number[];
  /** process CPU ms (all threads) during this configuration's timed steps */
  cpuMs: number;
}


/**
 * One repetition: every configuration starts from a copy of the initial parameters and takes the same
 * steps; the configurations take turns BLOCK BY BLOCK (BLOCK steps each), so a burst of load from another
 * process hits all of them alike. Returns each configuration's mean ms per timed step and its final parameters.
 */
async function interleavedRun(groups: WorkerGroup[], network: Network, initial: Float32Array, train: LabelledImages,
  batch: number, burnIn: number, measured: number, eta: number): Promise<{ msPerStep: number[]; cpuPerWall: number[]; params: Float32Array[] }> {
  const runs: ModeRun[] = groups.map((group) => {
    const params = network.allocParams();
    params.set(initial);
    return {
      group, params, gradSum: network.allocParams(), stepMs: [], cpuMs: 0,
      sgd: new Sgd(network.layout, network.kernels, { eta, momentum: 0, weightDecay: 0, trainSize: train.count }),
    };
  });
  // the same batches for every configuration and repetition: the first steps of an epoch with order seed 1
  const perm = epochPermutation(train.count, new Rng(1), true);
  const perEpoch = stepsPerEpoch(train.count, batch);
  // dpt bench's turns: each turn after the first starts with one untimed step (the configuration's threads
  // slept through the other configurations' turns: a wake-up on a cold vCPU no epoch pays), and steps
  // numbered below burnIn are not timed either
  await takeTurns(runs, burnIn + measured, BLOCK, async (r, step, index) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await trainStep({ network, sgd: r.sgd, group: r.group, params: r.params }, r.gradSum, step, batchIndices(perm, step % perEpoch, batch));
    if (index >= burnIn) {
      r.stepMs.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      r.cpuMs += (c.user + c.system) / 1000;
    }
  });
  const wallMs = runs.map((r) => r.stepMs.reduce((a, b) => a + b, 0));
  return { msPerStep: wallMs.map((w) => w / measured), cpuPerWall: runs.map((r, i) => r.cpuMs / wallMs[i]!), params: runs.map((r) => r.params) };
}

async function throughput(args: Args, kernels: Kernels, train: LabelledImages, out: (l: string) => void): Promise<void> {
  out(`seconds per epoch of 50,000 images, scaled from a PARTIAL epoch: burn-in steps untimed, then the timed steps (configurations taking turns in blocks of ${BLOCK} steps, each turn after the first after one untimed step back);`);
  out(`median over ${args.reps} repetitions of the mean step time, times the steps of a full epoch (5,000 / 391 / 49 at batch 10 / 128 / 1024);`);
  out('cpu/wall = CPU time of this process (all threads) / wall time over the timed steps: ~2 means two cores were busy, ~1 one');
  out('ceiling x2 = what 2 ranks could reach on this machine with a free exchange: one thread computing training steps of the whole batch ÷ two');
  out('threads computing half each in lockstep (each waits for the other after every step), nothing exchanged, no update (bench/harness/lockstep.ts);');
  out('measured after every repetition (it moves with the host\'s load from minute to minute), median; of ceiling = speedup x2 ÷ ceiling x2');
  out('');
  const head = ['network', 'batch', 'burn+timed steps', 'single s/ep', 'thr x1 s/ep', 'thr x2 s/ep', 'speedup x1', 'speedup x2', 'ceiling x2', 'of ceiling',
    'max|Δ| x1', 'max|Δ| x2', 'cpu/wall 1/x1/x2'];
  const rows: string[][] = [];
  for (const net of args.nets) {
    const network = new Network(net.spec, kernels);
    const initial = network.allocParams();
    initParams(initial, network.layout, net.init, new Rng(11));
    for (const batch of args.batches) {
      // at least MIN_TIMED_STEPS: at batch 1024 a handful of ~10-20 ms steps was all noise
      const measured = Math.max(MIN_TIMED_STEPS, Math.round(net.examples / batch));
      const burnIn = Math.max(MIN_BURN_IN, Math.ceil(measured / 4));
      const groups: WorkerGroup[] = [];
      try {
        for (const m of MODES) {
          groups.push(m.transport === 'inproc'
            ? new InProcessGroup(net.spec, kernels, train, m.world, batch)
            : await ThreadGroup.start({ spec: net.spec, kernels: kernels.name, coordinatorKernels: kernels, train, world: m.world, maxBatch: batch }));
        }
        const times: number[][] = MODES.map(() => []);
        const cpu: number[][] = MODES.map(() => []);
        const ceilings: number[] = [];
        let finals: Float32Array[] = [];
        for (let rep = 0; rep < args.reps; rep++) {
          const r = await interleavedRun(groups, network, initial, train, batch, burnIn, measured, net.eta);
          r.msPerStep.forEach((ms, i) => times[i]!.push(ms));
          r.cpuPerWall.forEach((x, i) => cpu[i]!.push(x));
          finals = r.params;
          const lockstep = await measureLockstep({ spec: net.spec, kernels: kernels.name, train, points: [{ shard: batch, ranks: 1 }, { shard: Math.ceil(batch / 2), ranks: 2 }] });
          ceilings.push(lockstep[1]![batch]! / lockstep[2]![Math.ceil(batch / 2)]!);
        }
        const diffs = finals.map((p) => maxAbsDiff(finals[0]!, p));
        const moved = maxAbsDiff(finals[0]!, initial);
        if (!(moved > 1e-4)) throw new Error(`${net.label} batch ${batch}: the parameters did not move; the comparison would prove nothing`);
        for (let i = 1; i < diffs.length; i++) {
          if (!(diffs[i]! <= 1e-4)) throw new Error(`${net.label} batch ${batch}: ${MODES[i]!.label} differs from single-node by ${diffs[i]}; not timing a wrong result`);
        }
        const epochSteps = stepsPerEpoch(50_000, batch);
        const sec = times.map((t) => (median(t) * epochSteps) / 1000);
        rows.push([net.label, String(batch), `${burnIn}+${measured}`, sec[0]!.toFixed(2), sec[1]!.toFixed(2), sec[2]!.toFixed(2),
          `${(sec[0]! / sec[1]!).toFixed(2)}x`, `${(sec[0]! / sec[2]!).toFixed(2)}x`, `${median(ceilings).toFixed(2)}x`, `${(100 * (sec[0]! / sec[2]!) / median(ceilings)).toFixed(0)}%`,
          diffs[1]!.toExponential(1), diffs[2]!.toExponential(1),
          cpu.map((c) => median(c).toFixed(2)).join('/')]);
        out(`  done: ${net.label} batch ${batch} (per-step ms by configuration and rep: ${times.map((t) => t.map((x) => x.toFixed(2)).join('/')).join(' | ')}; ceiling x2 by rep: ${ceilings.map((c) => c.toFixed(2)).join('/')})`);
      } finally {
        await Promise.all(groups.map((g) => g.close()));
      }
    }
  }
  out('');
  printTable(head, rows, out);
}

function printTable(head: string[], rows: string[][], out: (l: string) => void): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  out(line(head));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) out(line(r));
}

/**
 * One full epoch of the default network through the same code as `dpt train`: single-node,
 * threads x 2, and in-process x 2 (the same two shards computed one after the other in the main
 * thread) — threads x 2 equal to in-process x 2 shows that any difference from single-node is the
 * float32 summation order of two shard sums, not the threads.
 */
async function accuracy(args: Args, mnist: Mnist, out: (l: string) => void): Promise<void> {
  out('');
  out(`one epoch of the default network (784-30-10 sigmoid/quadratic, batch 10, eta 3, seed 1, 50,000 images, tested on 10,000), --kernels ${args.kernels}`);
  const finals: Float32Array[] = [];
  for (const [transport, workers] of [['inproc', 1], ['threads', 2], ['inproc', 2]] as const) {
    const session = await openSession({ ...DEFAULTS, epochs: 1, kernels: args.kernels, transport, workers }, mnist);
    const group = await startGroup(session);
    try {
      const result = await runTraining(trainingRun(session, group));
      const e = result.epochs[0]!;
      out(`  ${transport} x ${workers}: ${e.testCorrect} / ${e.testTotal} correct, training loss ${e.loss.toFixed(6)}, ${e.trainSeconds.toFixed(1)} s`);
    } finally {
      await group.close();
    }
    finals.push(session.params);
  }
  out(`  largest parameter difference after the epoch: threads x 2 vs single ${maxAbsDiff(finals[0]!, finals[1]!).toExponential(2)}, ` +
    `threads x 2 vs inproc x 2 ${maxAbsDiff(finals[2]!, finals[1]!).toExponential(2)}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const out = (l: string) => console.log(l);
  const { kernels, notes } = await createKernels(args.kernels);
  out(`bench/threads: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, --kernels ${args.kernels} -> ${kernels.name}${notes.length ? ` (${notes.join('; ')})` : ''}, ${args.reps} repetitions, ${new Date().toISOString()}`);
  out('note: 2 cores, so 2 workers is the most that can help; the coordinator shares a core with them while it reduces and steps');
  const mnist = loadMnist();
  // one shared copy of the images for every thread group of the run
  const train = shareImages(mnist.train);
  if (args.throughput) await throughput(args, kernels, train, out);
  if (args.accuracy) await accuracy(args, mnist, out);
}

await main();
