/**
 * WebSocket workers against single-node and PyTorch DDP, in one run: seconds per epoch for
 * single-node (in-process, world 1) and ws with 1 and 2 ranks in both data modes (ws 2: the
 * coordinator computes rank 0, one worker process rank 1, as `dpt launch --workers 2`), at
 * batch 10, 128 and 1024, for both reference nets; bytes on the wire per step; speedups.
 *
 * Partial epochs: each configuration runs `burn-in` steps untimed (at least MIN_BURN_IN: the
 * warm-up of a new session), then `steps` timed steps in
 * `reps` chunks; seconds/epoch = median chunk's seconds per step × steps per epoch (50,000
 * images). Evaluation is left out. Before a time is printed, the ws run's parameters are compared
 * with single-node's after the same steps (they must agree to float rounding).
 *
 *   node dist/bench/ws.js [--quick] [--kernels auto|js|wasm|blas] [--no-ddp] [--net 784-30-10] [--batch 10]
 */
import { cpus, loadavg } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InProcessGroup } from '../coordinator/inproc-group.js';
import { startWsGroup } from '../coordinator/launch.js';
import { profiledTrainStep } from '../coordinator/trainer.js';
import type { WorkerGroup } from '../coordinator/worker-group.js';
import { maxAbsDiff } from '../coordinator/equivalence.js';
import { DEFAULTS, parseKernels, type DataMode, type KernelChoice, type TrainConfig } from '../src/config.js';
import { epochPermutation, stepsPerEpoch } from '../src/data/batches.js';
import { loadMnist } from '../src/data/mnist.js';
import { initParams, type InitScheme } from '../src/model/init.js';
import { Network } from '../src/model/network.js';
import { layoutFor, type NetworkSpec } from '../src/model/spec.js';
import { Sgd } from '../src/optim/sgd.js';
import { createKernels } from '../src/tensor/engines.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { echoFloor } from './ws-echo.js';
import { Rng } from '../src/tensor/rng.js';
import { mean, median } from '../src/profile/stats.js';
import { HANDOFF } from '../src/profile/phases.js';
import { Profiler } from '../src/profile/profiler.js';
import { summarizeSteps } from '../src/profile/summary.js';

interface NetCase { name: string; spec: NetworkSpec; init: InitScheme; eta: number }
const NETS: NetCase[] = [
  { name: '784-30-10', spec: { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' }, init: 'gaussian', eta: 3 },
  { name: '784-256-256-10', spec: { sizes: [784, 256, 256, 10], activation: 'relu', cost: 'cross-entropy' }, init: 'scaled', eta: 0.1 },
];
const BATCHES = [10, 128, 1024];
const EPOCH = 50_000;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const kernelChoice: KernelChoice = args.includes('--kernels') ? parseKernels(args[args.indexOf('--kernels') + 1]!) : 'auto';
const withDdp = !args.includes('--no-ddp');
const onlyNet = args.includes('--net') ? args[args.indexOf('--net') + 1] : undefined;
const onlyBatch = args.includes('--batch') ? Number(args[args.indexOf('--batch') + 1]) : undefined;
const REPS = 3;

/** Timed steps: about 2,000 examples and at least 30 steps (10 per chunk; 3 with --quick), fewer examples with --quick. */
/**
 * Untimed steps first, at least this many: a new WebSocket session takes ~100-200 steps to reach
 * its steady speed (784-256-256-10, batch 128, one worker: median step 10-11 ms over steps 1-25,
 * 6.5-7 ms over 26-50, ~5 ms from ~200 on; V8 optimising the per-message code of both processes).
 * An epoch of many runs is nearly all steady state; DDP gets the same burn-in.
 */
const MIN_BURN_IN = 200;

function plan(batch: number): { burnIn: number; steps: number } {
  const steps = Math.max(quick ? REPS : 10 * REPS, Math.round((quick ? 500 : 2000) / batch / REPS) * REPS);
  return { burnIn: Math.max(quick ? 1 : MIN_BURN_IN, Math.round(steps / 10)), steps };
}

const mnist = loadMnist();
const train = mnist.train;

/**
 * Steps after which the parameters are compared with single-node's. N workers add their shard
 * sums in a different order than one worker: float32 rounding, which hundreds of SGD steps
 * amplify (784-256-256-10, batch 1024: 1.6e-4 after 230 steps), so the check looks early, where a
 * lost or doubled shard would already stand out and rounding is still ~1e-7.
 */
const CHECK_STEPS = 20;

interface Measured {
  secondsPerStep: number; bytesPerStep: number; workerMs: number; commMs: number;
  /** the parameters after CHECK_STEPS steps (or all of them, when fewer) */
  params: Float32Array;
}

async function measure(group: WorkerGroup, net: Network, initial: Float32Array, eta: number, batch: number): Promise<Measured> {
  const { burnIn, steps } = plan(batch);
  const params = net.allocParams();
  params.set(initial);
  const checked = new Float32Array(params.length);
  const sgd = new Sgd(net.layout, net.kernels, { eta, momentum: 0, weightDecay: 0, trainSize: train.count });
  const gradSum = net.allocParams();
  const perm = epochPermutation(train.count, new Rng(5), true);
  const profiler = new Profiler(group.world, burnIn, burnIn + steps);
  const chunk = steps / REPS;
  const perStep: number[] = [];
  let t0 = 0;
  for (let s = 0; s < burnIn + steps; s++) {
    if (s === burnIn) t0 = performance.now();
    await profiledTrainStep({ network: net, sgd, group, params }, profiler, gradSum, s, perm, s % stepsPerEpoch(train.count, batch), batch);
    if (s + 1 === CHECK_STEPS) checked.set(params);
    if (s >= burnIn && (s - burnIn + 1) % chunk === 0) {
      const now = performance.now();
      perStep.push((now - t0) / chunk / 1000);
      t0 = now;
    }
  }
  if (burnIn + steps < CHECK_STEPS) checked.set(params);
  const measured = profiler.measuredSteps();
  const summary = summarizeSteps(measured, group.world, burnIn);
  return {
    secondsPerStep: median(perStep), bytesPerStep: summary.bytesPerStep, params: checked,
    workerMs: mean(measured.map((rec) => Math.max(...rec.ranks.map((k) => k.loadMs + k.computeMs)))),
    // the profiler's HANDOFF: each rank's round trip less everything both sides timed, mean over ranks
    commMs: summary.phases.find((row) => row.phase === HANDOFF)!.perStepMs,
  };
}

/**
 * `world` ranks over ws started as `dpt launch --workers N` starts them (startWsGroup): with two or
 * more, the coordinator computes rank 0 and world − 1 worker processes the others (as DDP's rank 0
 * does); with one, a worker process computes it and the coordinator only averages.
 */
async function wsGroup(spec: NetworkSpec, world: number, batch: number, data: DataMode, coordinatorKernels: Kernels): Promise<WorkerGroup> {
  const config: TrainConfig = { ...DEFAULTS, spec, batch, transport: 'ws', workers: world, kernels: kernelChoice, dataMode: data };
  return startWsGroup(config, train, () => {}, coordinatorKernels);
}

/**
 * The transport floor: one example per worker (compute ~nothing), 784-30-10's 95 KB of
 * parameters out and gradient back; median round trip of computeStep over 1,200 steps after 300.
 */
async function floor(): Promise<void> {
  const spec = NETS[0]!.spec;
  const { kernels } = await createKernels(kernelChoice);
  const net = new Network(spec, kernels);
  const params = net.allocParams();
  initParams(params, net.layout, 'gaussian', new Rng(1));
  for (const world of [1, 2]) {
    const g = await wsGroup(spec, world, world, 'local', kernels);
    try {
      const idx = Uint32Array.from({ length: world }, (_, i) => i);
      const round: number[] = [];
      const own: number[] = [];
      for (let s = 0; s < 1500; s++) {
        const t = performance.now();
        const r = await g.computeStep({ step: s, params, indices: idx });
        if (s < 300) continue;
        round.push(performance.now() - t);
        own.push(Math.max(...r.map((x) => x.timing.loadMs + x.timing.computeMs + x.timing.decodeMs + x.timing.encodeMs)));
      }
      const rt = median(round);
      const w = median(own);
      console.log(`transport floor, ws ${world}: computeStep median ${(rt * 1000).toFixed(0)} us, of which the worker's own time ${(w * 1000).toFixed(0)} us (decode, 1-example compute, encode): ~${((rt - w) * 1000).toFixed(0)} us on the wire and in wake-ups`);
    } finally {
      await g.close();
    }
  }
  console.log('');
}

/** Bare ws round trips (bench/ws-echo.ts) of a step's bytes for each net, 1 and 2 processes: no dpt code at all. */
async function bareFloors(): Promise<void> {
  for (const n of NETS.filter((x) => onlyNet === undefined || x.name === onlyNet)) {
    const bytes = layoutFor(n.spec).size * 4 + 64;
    for (const world of [1, 2]) {
      const f = await echoFloor(world, bytes, bytes, n.name === '784-30-10' ? 1000 : 200, n.name === '784-30-10' ? 200 : 40);
      bareFloor.set(`${n.name}|${world}`, f.medianMs);
      console.log(`bare ws floor, ${n.name}, ${world} process${world > 1 ? 'es' : ''}: ${fmtB(bytes)} out and back per process, no dpt code, no compute: median ${f.medianMs.toFixed(2)} ms, p10 ${f.p10Ms.toFixed(2)} ms per round`);
    }
  }
  console.log('');
}

const bareFloor = new Map<string, number>();
/** ws 2 local and DDP (dataloader) seconds per step by net and batch, for the target lines. */
const versusDdp: { net: string; batch: number; ws2: number; ddp: number }[] = [];
/** epoch-speed ratios ws x2 must reach against DDP (gloo, 2 processes) on one machine */
const DDP_TARGETS: Record<string, number> = { '784-30-10|10': 3, '784-30-10|128': 3, '784-256-256-10|1024': 1.2 };

function findPython(): string | null {
  for (const py of [process.env.DPT_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    try {
      execFileSync(py, ['-c', 'import torch, torch.distributed as d; assert d.is_gloo_available()'], { stdio: 'ignore' });
      return py;
    } catch { /* try the next */ }
  }
  return null;
}

function ddp(py: string, n: NetCase, batch: number, loader: 'dataloader' | 'index'): number | null {
  const { burnIn, steps } = plan(batch);
  const script = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bench', 'peers', 'ddp.py');
  try {
    const out = execFileSync(py, [script, '--sizes', n.spec.sizes.join(','), '--activation', n.spec.activation, '--cost', n.spec.cost,
      '--eta', String(n.eta), '--batch', String(batch), '--world', '2', '--steps', String(steps), '--burn-in', String(burnIn),
      '--reps', String(REPS), '--loader', loader, '--data-dir', mnist.dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { secondsPerStep?: number; error?: string };
    if (r.error) throw new Error(r.error);
    return r.secondsPerStep!;
  } catch (e) {
    console.log(`  DDP failed: ${(e as Error).message.split('\n')[0]}`);
    return null;
  }
}

const fmtS = (s: number): string => (s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s.toFixed(2));
const fmtB = (b: number): string => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} KB`);

async function main(): Promise<void> {
  const { kernels, notes } = await createKernels(kernelChoice);
  const py = withDdp ? findPython() : null;
  console.log(`# bench/ws: single-node vs WebSocket workers vs PyTorch DDP (gloo), ${new Date().toISOString()}`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}; kernels --kernels ${kernelChoice} -> ${kernels.name}${notes.length ? ` (${notes.join('; ')})` : ''}`);
  console.log(`ws 1: one worker process, the coordinator only averaging; ws 2: the coordinator computes rank 0, one worker process rank 1; on 127.0.0.1, ${cpus().length} cores`);
  console.log(`partial epochs: per config ${quick ? '~500' : '~2,000 (at least 30 steps)'} examples timed after a burn-in of ${quick ? '10%' : `${MIN_BURN_IN} steps (the session's warm-up)`}, median of ${REPS} chunks, scaled to ${EPOCH.toLocaleString('en-US')} images/epoch; evaluation excluded`);
  console.log(py ? `DDP peer: ${py} bench/peers/ddp.py, 2 processes, gloo, torch.set_num_threads(1)` : withDdp ? 'DDP peer skipped: no python3 with torch + gloo (Debian: apt-get install -y python3-torch)' : 'DDP peer skipped (--no-ddp)');
  console.log('');
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (other processes share these cores; figures swing with it)`);
  console.log('columns: seconds/epoch; ms/step; slowest worker\'s own compute ms/step; communication ms/step (round trip minus worker time, mean over ranks);');
  console.log(`         bytes on the wire per step (all ranks, both directions); speedup vs single-node; speedup vs DDP with a DataLoader; max |param diff| vs single-node after ${CHECK_STEPS} steps`);
  console.log('');
  if (!onlyNet && !onlyBatch) await floor();
  await bareFloors();
  console.log('net             batch  config            s/epoch  ms/step  work ms comm ms  wire/step  vs single vs DDP  max|Δparam|');
  for (const n of NETS.filter((x) => onlyNet === undefined || x.name === onlyNet)) {
    for (const batch of BATCHES.filter((b) => onlyBatch === undefined || b === onlyBatch)) {
      const net = new Network(n.spec, kernels);
      const initial = net.allocParams();
      initParams(initial, net.layout, n.init, new Rng(1));
      const epochSteps = stepsPerEpoch(EPOCH, batch);
      const single = await measure(new InProcessGroup(n.spec, kernels, train, 1, batch), net, initial, n.eta, batch);
      // DDP as users write it (DistributedSampler + DataLoader) is the reference column; the lean
      // loop (index a preloaded tensor) is its floor.
      const ddpSec = py ? ddp(py, n, batch, 'dataloader') : null;
      const ddpLean = py ? ddp(py, n, batch, 'index') : null;
      const row = (config: string, m: Measured | null, sec: number, diff: string): void => {
        const speed = single.secondsPerStep / sec;
        const split = m && m.workerMs > 0 ? `${m.workerMs.toFixed(2).padStart(8)} ${m.commMs.toFixed(2).padStart(7)}` : `${'-'.padStart(8)} ${'-'.padStart(7)}`;
        console.log(`${n.name.padEnd(15)} ${String(batch).padStart(5)}  ${config.padEnd(16)} ${fmtS(sec * epochSteps).padStart(8)} ${(sec * 1000).toFixed(2).padStart(8)} ${split}  ${(m ? fmtB(m.bytesPerStep) : '-').padStart(9)} ${speed.toFixed(2).padStart(7)}x ${ddpSec ? `${(ddpSec / sec).toFixed(2)}x`.padStart(7) : '-'.padStart(7)}  ${diff}`);
      };
      row('single-node', single, single.secondsPerStep, '-');
      for (const world of [1, 2]) {
        for (const data of ['local', 'ship'] as const) {
          const g = await wsGroup(n.spec, world, batch, data, kernels);
          try {
            const m = await measure(g, net, initial, n.eta, batch);
            const d = maxAbsDiff(single.params, m.params);
            if (!(d <= 1e-4)) throw new Error(`ws ${world} ${data} diverged from single-node by ${d}: not timing a wrong result`);
            row(`ws ${world} ${data}`, m, m.secondsPerStep, d.toExponential(1));
            if (world === 2 && data === 'local' && ddpSec !== null) versusDdp.push({ net: n.name, batch, ws2: m.secondsPerStep, ddp: ddpSec });
          } finally {
            await g.close();
          }
        }
      }
      if (ddpSec !== null) row('DDP 2 dataloader', null, ddpSec, '-');
      if (ddpLean !== null) row('DDP 2 lean loop', null, ddpLean, '-');
    }
  }
}

await main();
if (versusDdp.length > 0) {
  console.log('\ntargets: 2 ws workers (local data) against DDP with a DataLoader, seconds per epoch ratio');
  for (const v of versusDdp) {
    const target = DDP_TARGETS[`${v.net}|${v.batch}`];
    const floorMs = bareFloor.get(`${v.net}|2`);
    const bound = floorMs !== undefined ? `; the bare ws round trip of these bytes with 2 processes alone is ${floorMs.toFixed(2)} ms, so no ws step that ships them can beat DDP by more than ${(v.ddp * 1000 / floorMs).toFixed(2)}x` : '';
    console.log(`- ${v.net} batch ${v.batch}: ws 2 ${(v.ws2 * 1000).toFixed(2)} ms/step, DDP ${(v.ddp * 1000).toFixed(2)} ms/step: ${(v.ddp / v.ws2).toFixed(2)}x` +
      (target !== undefined ? ` (target ${target}x: ${v.ddp / v.ws2 >= target ? 'MET' : 'NOT MET'})` : '') + bound);
  }
}
console.log(`\nload average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
