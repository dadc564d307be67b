/**
 * One typed configuration with every default in one place, and the parsers that turn flag
 * strings into it. Each parser throws a ConfigError naming the flag and the fix; the CLI only
 * calls these, so an option means the same thing in every command.
 */
import type { InitScheme } from './model/init.js';
import { INIT_SCHEMES } from './model/init.js';
import { COSTS, HIDDEN_ACTIVATIONS, type NetworkSpec } from './model/spec.js';
import type { Cost, HiddenActivation } from './tensor/kernels.js';
import { BANDWIDTH_HINT, LATENCY_HINT, parseBitsPerS, parseLatencyMs, type WhatIf } from './profile/what-if.js';
import { ConfigError } from './config-error.js';
import type { EmulatedHosts } from './profile/bench-facts.js';
import { LR_SCALES, type LrScale } from './optim/lr-schedule.js';

/** How workers run: in this process (the single-node baseline at 1), a thread pool, WebSocket processes. */
export type TransportName = 'inproc' | 'threads' | 'ws';
export const TRANSPORTS: readonly TransportName[] = ['inproc', 'threads', 'ws'];

export { ConfigError };

export type KernelChoice = 'auto' | 'js' | 'wasm' | 'blas';
export const KERNEL_CHOICES: readonly KernelChoice[] = ['auto', 'js', 'wasm', 'blas'];
export type EvalSet = 'test' | 'validation';
/** ws workers: local = each loads MNIST and gets indices; ship = the coordinator sends pixels and labels */
export type DataMode = 'local' | 'ship';
export const DATA_MODES: readonly DataMode[] = ['local', 'ship'];
/** ws: the format parameters and gradients cross the WebSocket in (src/protocol/wire-format.ts) */
export type WireFormat = 'fp32' | 'fp16' | 'bf16';
export const WIRE_FORMATS: readonly WireFormat[] = ['fp32', 'fp16', 'bf16'];

export interface TrainConfig {
  spec: NetworkSpec;
  init: InitScheme;
  epochs: number;
  batch: number;
  eta: number;
  /** scale eta with the batch against lrReferenceBatch (src/optim/lr-schedule.ts) */
  lrScale: LrScale;
  lrReferenceBatch: number;
  /** epochs over which eta ramps from --eta to the scaled eta (0 = none) */
  warmupEpochs: number;
  momentum: number;
  weightDecay: number;
  /** local SGD: steps between two averagings of the ranks' parameters (1: the gradients are averaged every step) */
  averageEvery: number;
  /** local SGD: whole epochs of per-step averaging before averaging every averageEvery steps (post-local SGD) */
  localSgdAfter: number;
  /** local SGD: average the ranks' momentum buffers with their parameters; otherwise each rank keeps its own */
  averageOptimizerState: boolean;
  seed: number;
  shuffle: boolean;
  /** train on the first N of the 50,000 training images only */
  trainLimit: number | null;
  /** stop after this many steps in total */
  maxSteps: number | null;
  dataDir: string | null;
  evalSet: EvalSet;
  initFrom: string | null;
  save: string | null;
  json: boolean;
  kernels: KernelChoice;
  transport: TransportName;
  /** ranks: the global batch is cut into this many shards, whatever the transport */
  workers: number;
  /**
   * ws: the coordinator computes no rank and only averages (a parameter server for many weak
   * workers): --workers counts worker processes. Without it the coordinator computes rank 0 itself
   * and --workers - 1 processes the others (see wsWorkerProcesses).
   */
  averageOnly: boolean;
  /** print per-phase and per-worker tables at the end (dpt train --profile) */
  profile: boolean;
  /** write a Chrome trace-event JSON file of the steps */
  trace: string | null;
  /** leading steps left out of every profile figure */
  burnIn: number;
  /** write a checkpoint here every checkpointEvery steps, and on SIGINT/SIGTERM */
  checkpoint: string | null;
  checkpointEvery: number | null;
  /** continue from this checkpoint */
  resume: string | null;
  /** ws: HOST:PORT the coordinator listens on (port 0: any free port) */
  listen: string;
  /** ws: shared secret workers must prove they know; null = generate one */
  token: string | null;
  /** ws: the coordinator serves wss:// with this PEM certificate and its key (both or neither) */
  tlsCert: string | null;
  tlsKey: string | null;
  dataMode: DataMode;
  /** ws: fp32, or a 16-bit format with error feedback (the coordinator keeps fp32 parameters) */
  wire: WireFormat;
  /** ws: start the workers as local processes (launch) rather than wait for them (coordinator) */
  spawnWorkers: boolean;
  /** ws: seconds to wait for all workers to join */
  joinTimeout: number;
  /**
   * ws: training fails when fewer ranks than this remain, the coordinator's own rank 0 counted
   * (lost workers' shards go to the surviving workers, or to the coordinator when none is left)
   */
  minWorkers: number;
  /** ws: seconds a worker may take to answer one shard before it is dropped and its shard re-assigned (null: no deadline) */
  stepTimeout: number | null;
  /** before training, run this many steps single-node and distributed and compare (null = off) */
  verifyEquivalence: number | null;
  /** largest absolute parameter difference --verify-equivalence accepts */
  equivalenceTolerance: number;
}

/** Nielsen's chapter-1 network and hyper-parameters. */
export const DEFAULTS: TrainConfig = {
  spec: { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' },
  init: 'gaussian',
  epochs: 30,
  batch: 10,
  eta: 3.0,
  lrScale: 'none',
  // Nielsen's mini-batch, the one his eta of 3.0 goes with
  lrReferenceBatch: 10,
  warmupEpochs: 0,
  momentum: 0,
  weightDecay: 0,
  averageEvery: 1,
  localSgdAfter: 0,
  averageOptimizerState: false,
  seed: 1,
  shuffle: true,
  trainLimit: null,
  maxSteps: null,
  dataDir: null,
  evalSet: 'test',
  initFrom: null,
  save: null,
  json: false,
  kernels: 'auto',
  transport: 'inproc',
  workers: 1,
  averageOnly: false,
  profile: false,
  trace: null,
  burnIn: 10,
  checkpoint: null,
  checkpointEvery: null,
  resume: null,
  listen: '127.0.0.1:0',
  token: null,
  tlsCert: null,
  tlsKey: null,
  dataMode: 'local',
  wire: 'fp32',
  spawnWorkers: true,
  joinTimeout: 60,
  minWorkers: 1,
  stepTimeout: null,
  verifyEquivalence: null,
  equivalenceTolerance: 1e-5,
};

export function parsePositiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(`${flag} must be a positive integer, got '${value}' (e.g. ${flag} 10)`);
  }
  return n;
}

export function parseNonNegativeInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new ConfigError(`${flag} must be a non-negative integer, got '${value}'`);
  }
  return n;
}

export function parseNumber(flag: string, value: string, { min, max, minExclusive = false }: { min?: number; max?: number; minExclusive?: boolean } = {}): number {
  const n = Number(value);
  const lowOk = min === undefined || (minExclusive ? n > min : n >= min);
  const highOk = max === undefined || n < max;
  if (value.trim() === '' || !Number.isFinite(n) || !lowOk || !highOk) {
    const range = `${min === undefined ? '' : `${minExclusive ? '>' : '>='} ${min}`}${min !== undefined && max !== undefined ? ' and ' : ''}${max === undefined ? '' : `< ${max}`}`;
    throw new ConfigError(`${flag} must be a number${range ? ` ${range}` : ''}, got '${value}'`);
  }
  return n;
}

export function parseSizes(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length < 2 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) {
    throw new ConfigError(`--sizes must be a comma-separated list of at least two positive integers, got '${value}' (e.g. --sizes 784,30,10)`);
  }
  const sizes = parts.map(Number);
  if (sizes[0] !== 784) throw new ConfigError(`--sizes must start with 784 (MNIST images are 28x28), got '${value}'`);
  if (sizes[sizes.length - 1] !== 10) throw new ConfigError(`--sizes must end with 10 (the ten digits), got '${value}'`);
  return sizes;
}

export function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new ConfigError(`${flag} must be one of ${choices.join(', ')}, got '${value}'`);
  }
  return value as T;
}

export const parseActivation = (v: string): HiddenActivation => parseChoice('--activation', v, HIDDEN_ACTIVATIONS);
export const parseCost = (v: string): Cost => parseChoice('--cost', v, COSTS);
export const parseInit = (v: string): InitScheme => parseChoice('--init', v, INIT_SCHEMES);
export const parseKernels = (v: string): KernelChoice => parseChoice('--kernels', v, KERNEL_CHOICES);
export const parseTransport = (v: string): TransportName => parseChoice('--transport', v, TRANSPORTS);
export const parseDataMode = (v: string): DataMode => parseChoice('--data', v, DATA_MODES);
export const parseWire = (v: string): WireFormat => parseChoice('--wire', v, WIRE_FORMATS);
export const parseLrScale = (v: string): LrScale => parseChoice('--lr-scale', v, LR_SCALES);
export const parseEvalSet = (v: string): EvalSet => parseChoice('--eval-set', v, ['test', 'validation'] as const);

/** A seed stream per purpose, so that e.g. changing the init scheme does not change the data order. */
export function deriveSeed(seed: number, stream: 'init' | 'order'): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ (stream === 'init' ? 0x1234567 : 0x7654321)) >>> 0;
}

/**
 * ws: whether the coordinator computes rank 0 itself, as rank 0 of PyTorch DDP or Horovod does and
 * the thread pool here does: with 2 or more ranks, unless --average-only. One rank alone is a
 * worker process, so `ws x1` measures the exchange (like `threads x1`).
 */
export function coordinatorComputesRank0(c: Pick<TrainConfig, 'workers' | 'averageOnly'>): boolean {
  return c.workers >= 2 && !c.averageOnly;
}

/** ws: the worker processes a run waits for (or `dpt launch` starts): the ranks the coordinator does not compute. */
export function wsWorkerProcesses(c: Pick<TrainConfig, 'workers' | 'averageOnly'>): number {
  return c.workers - (coordinatorComputesRank0(c) ? 1 : 0);
}

/** A 16-bit --wire in dpt bench applies to ws configurations; with none among `transports` it would compare nothing. */
export function checkBenchWire(wire: readonly WireFormat[], transports: readonly TransportName[]): void {
  if (wire.some((w) => w !== 'fp32') && !transports.includes('ws')) {
    throw new ConfigError(`--wire ${wire.join(',')} sets the format of what crosses the WebSocket, and --transport ${transports.join(',')} sends nothing over a wire: `
      + 'add ws to --transport, or drop --wire');
  }
}

/** --average-only changes what the coordinator of WebSocket workers does; with no ws among `transports` it would do nothing. */
export function checkAverageOnly(averageOnly: boolean, transports: readonly TransportName[]): void {
  if (averageOnly && !transports.includes('ws')) {
    throw new ConfigError(`--average-only makes the coordinator of WebSocket workers compute no rank, and --transport ${transports.join(',')} has none: `
      + 'drop --average-only, or use dpt launch / --transport ws');
  }
}

/** Checks that combine several options; single options are checked by their parsers. */
export function validateConfig(c: TrainConfig): void {
  if (c.checkpointEvery !== null && c.checkpoint === null) {
    throw new ConfigError('--checkpoint-every needs --checkpoint FILE to say where to write');
  }
  if (c.resume !== null && c.initFrom !== null) {
    throw new ConfigError('--resume and --init-from both set the parameters: pass only one (a checkpoint holds the parameters)');
  }
  if (c.tlsCert !== null && c.tlsKey === null) {
    throw new ConfigError('--tls-cert needs --tls-key FILE, the private key of the certificate');
  }
  if (c.tlsKey !== null && c.tlsCert === null) {
    throw new ConfigError('--tls-key needs --tls-cert FILE, the certificate the key belongs to');
  }
  if (c.tlsCert !== null && c.transport !== 'ws') {
    throw new ConfigError(`--tls-cert and --tls-key secure WebSocket workers, not --transport ${c.transport}: use them with dpt coordinator, dpt launch or --transport ws`);
  }
  if (c.wire !== 'fp32' && c.transport !== 'ws') {
    throw new ConfigError(`--wire ${c.wire} sets the format of what crosses the WebSocket, and --transport ${c.transport} sends nothing over a wire (its workers read the parameters in place): drop --wire or use dpt launch / --transport ws`);
  }
  if (c.minWorkers > c.workers) {
    throw new ConfigError(`--min-workers ${c.minWorkers} exceeds --workers ${c.workers}: lower --min-workers or start more workers`);
  }
  validateWarmup(c);
  validateLocalSgd(c);
}

/** Warmup ramps from --eta to the scaled eta within the run: both must exist and differ. */
function validateWarmup(c: TrainConfig): void {
  if (!(Number.isFinite(c.warmupEpochs) && c.warmupEpochs >= 0)) {
    throw new ConfigError(`--warmup-epochs must be a number >= 0, got ${c.warmupEpochs}`);
  }
  if (c.warmupEpochs === 0) return;
  if (c.lrScale === 'none') {
    throw new ConfigError('--warmup-epochs needs --lr-scale linear or sqrt: with none there is nothing to warm up to');
  }
  if (c.warmupEpochs > c.epochs) {
    throw new ConfigError(`--warmup-epochs ${c.warmupEpochs} exceeds --epochs ${c.epochs}: the rate would never reach its scaled value; lower --warmup-epochs or raise --epochs`);
  }
  if (c.batch === c.lrReferenceBatch) {
    throw new ConfigError(`--warmup-epochs has nothing to warm up to: --batch ${c.batch} equals --lr-reference-batch, so --lr-scale ${c.lrScale} leaves eta at ${c.eta}; drop --warmup-epochs or train at a larger --batch`);
  }
}

type LocalSgdSettings = Pick<TrainConfig, 'averageEvery' | 'localSgdAfter' | 'averageOptimizerState' | 'momentum' | 'epochs'>;

/**
 * Local SGD: --average-every K > 1 is what the other two options modify, and the switch to it must
 * fall within the run. K > 1 with one worker is allowed: one rank has nothing to average, which is
 * single-node training.
 */
function validateLocalSgd(c: LocalSgdSettings, epochsFlag = '--epochs'): void {
  if (!(Number.isSafeInteger(c.averageEvery) && c.averageEvery >= 1)) {
    throw new ConfigError(`--average-every must be a positive integer, got ${c.averageEvery} (1 averages the gradients every step; e.g. --average-every 16)`);
  }
  if (!(Number.isSafeInteger(c.localSgdAfter) && c.localSgdAfter >= 0)) {
    throw new ConfigError(`--local-sgd-after must be a whole number of epochs >= 0, got ${c.localSgdAfter}`);
  }
  if (c.localSgdAfter > 0 && c.averageEvery === 1) {
    throw new ConfigError(`--local-sgd-after ${c.localSgdAfter} needs --average-every K > 1: it switches from averaging every step to averaging every K steps, `
      + 'and with --average-every 1 there is nothing to switch to; add e.g. --average-every 16 or drop --local-sgd-after');
  }
  if (c.localSgdAfter > 0 && c.localSgdAfter >= c.epochs) {
    throw new ConfigError(`--local-sgd-after ${c.localSgdAfter} is not below ${epochsFlag} ${c.epochs}: the run would end before local SGD starts; `
      + `lower --local-sgd-after or raise ${epochsFlag}`);
  }
  if (c.averageOptimizerState && c.averageEvery === 1) {
    throw new ConfigError('--average-optimizer-state needs --average-every K > 1: averaging every step, the ranks share one optimizer state already; '
      + 'add e.g. --average-every 16 or drop --average-optimizer-state');
  }
  if (c.averageOptimizerState && c.momentum === 0) {
    throw new ConfigError('--average-optimizer-state averages the ranks\' momentum buffers, and --momentum 0 keeps none: add e.g. --momentum 0.9 or drop --average-optimizer-state');
  }
}

/** Where an interrupted run writes its checkpoint when --checkpoint was not given. */
export function interruptCheckpointPath(c: TrainConfig): string {
  return c.checkpoint ?? c.resume ?? 'dpt-interrupted.ckpt';
}

/** `dpt bench`: the measured grid (every cell runs against the same data, seed and initial parameters). */
export interface BenchConfig {
  /** training settings shared by every cell; spec, batch, transport, workers and the local SGD settings are set per cell */
  base: TrainConfig;
  nets: number[][];
  transports: TransportName[];
  workers: number[];
  batches: number[];
  /** local SGD: every K crosses every transport and worker count (one worker only at K = 1) */
  averageEvery: number[];
  /** ws configurations cross every format; the others send nothing over a wire and run fp32 */
  wire: WireFormat[];
  /** the local SGD settings of every configuration with K > 1 */
  localSgdAfter: number;
  averageOptimizerState: boolean;
  /** measured steps per cell, after burnIn unmeasured ones (ignored when epochs is set) */
  steps: number;
  burnIn: number;
  /** the steps are split into this many repetitions per cell, interleaved across cells (1 with epochs) */
  repeats: number;
  /** time-to-accuracy mode: whole epochs per cell, evaluated on the full eval set */
  epochs: number | null;
  /** time to a target accuracy over several seeds (--target-accuracy); null: not this mode */
  targetAccuracy: number | null;
  /** with targetAccuracy: epochs a seed may take before it counts as a miss */
  maxEpochs: number;
  /** with targetAccuracy: each seed changes the initial parameters and the data order */
  seeds: number[];
  /** test images evaluated after a fixed-steps cell */
  evalLimit: number;
  whatIf: WhatIf | null;
  report: string | null;
  json: boolean;
  /** the emulated hosts this bench runs on (inside `dpt bench --emulate`); null: this machine as it is */
  emulated: EmulatedHosts | null;
}

/**
 * What `dpt bench` compares with no flags: one node against two threads, which run at the same time
 * and so can pay off on a machine with a free core, at a batch whose work per step (Nielsen's net,
 * ~3 ms at 1024 on one core) outweighs handing the shards to the pool; in-process workers take turns
 * and never can, so they are only the reference beside them.
 */
export const BENCH_DEFAULTS = {
  transports: ['inproc', 'threads'] as TransportName[], workers: [1, 2], batches: [1024], averageEvery: [1], wire: ['fp32'] as WireFormat[], steps: 100, burnIn: 50, repeats: 3, evalLimit: 1000, maxEpochs: 40,
};

/**
 * --target-accuracy: a fraction (0.95) or a percentage with its sign (95%). A bare 95 is refused
 * rather than guessed at, and so is anything above 100%, which no run can reach.
 */
export function parseTargetAccuracy(value: string): number {
  const percent = /^\s*([0-9.]+)\s*%\s*$/.exec(value);
  const n = percent ? Number(percent[1]) / 100 : Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) {
    const hint = n > 1 && !percent && n <= 100 ? ` (for ${n} percent write ${n}%)` : n > 1 ? ': no run can reach more than 100%' : '';
    throw new ConfigError(`--target-accuracy must be a fraction in (0, 1] such as 0.95, or a percentage such as 95%, got '${value}'${hint}`);
  }
  return n;
}

/** The time-to-accuracy flags of `dpt bench` against each other and against --epochs. */
export function checkTimeToAccuracyFlags(f: { targetAccuracy?: number; epochs?: number; maxEpochs?: number; seeds?: number[] }): void {
  if (f.targetAccuracy !== undefined && f.epochs !== undefined) {
    throw new ConfigError('--target-accuracy and --epochs exclude each other: --target-accuracy trains each configuration until it reaches the target (at most --max-epochs epochs); drop one of them');
  }
  if (f.targetAccuracy === undefined && f.maxEpochs !== undefined) throw new ConfigError('--max-epochs needs --target-accuracy: it caps the epochs a seed may take to reach it');
  if (f.targetAccuracy === undefined && f.seeds !== undefined) throw new ConfigError('--seeds needs --target-accuracy; for one seed without it use --seed');
}

/**
 * The local SGD flags of `dpt bench` against each other and the run's length: they hold for the
 * largest K of --average-every's list (the configurations with K = 1 leave them out), and
 * --local-sgd-after must fall within --epochs, or --max-epochs with --target-accuracy.
 */
export function checkBenchLocalSgdFlags(f: {
  averageEvery: number[]; localSgdAfter: number; averageOptimizerState: boolean; momentum: number; epochs?: number; targetAccuracy?: number; maxEpochs?: number;
}): void {
  const k = Math.max(...f.averageEvery);
  const epochsFlag = f.targetAccuracy !== undefined ? '--max-epochs' : '--epochs';
  const epochs = f.targetAccuracy !== undefined ? f.maxEpochs ?? BENCH_DEFAULTS.maxEpochs : f.epochs;
  if (f.localSgdAfter > 0 && k > 1 && epochs === undefined) {
    throw new ConfigError('--local-sgd-after counts epochs, and without --epochs or --target-accuracy dpt bench measures the speed of a few hundred steps: '
      + 'add --epochs N or --target-accuracy A, or drop --local-sgd-after');
  }
  validateLocalSgd({ averageEvery: k, localSgdAfter: f.localSgdAfter, averageOptimizerState: f.averageOptimizerState, momentum: f.momentum, epochs: epochs ?? Infinity }, epochsFlag);
}

/** A comma-separated list, each item checked by parseItem ("--workers 1,2,4"). */
export function parseList<T>(flag: string, value: string, parseItem: (v: string) => T): T[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) throw new ConfigError(`${flag} must be a comma-separated list without empty items, got '${value}'`);
  return [...new Set(parts.map(parseItem))];
}

/** `dpt launch --emulate`: what each emulated host gets; a key left out is not emulated. */
export interface EmulateSpec {
  /** cores per host (0.6 = 60% of one core) */
  cpu: number | null;
  bandwidthBitsPerS: number | null;
  /** one-way, added where the kernel has sch_netem */
  latencyMs: number | null;
}

/** Parses --emulate cpu=C,bandwidth=B[,latency=L] (bandwidth and latency as in --what-if). */
export function parseEmulate(text: string): EmulateSpec {
  const e: EmulateSpec = { cpu: null, bandwidthBitsPerS: null, latencyMs: null };
  const bad = (why: string): never => {
    throw new ConfigError(`--emulate '${text}': ${why} (e.g. --emulate cpu=0.5,bandwidth=100Mbit)`);
  };
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const [key, value = ''] = part.split('=', 2).map((p) => p.trim());
    if (!part.includes('=')) bad(`'${part}' is not key=value`);
    if (key === 'cpu') {
      const cpu = Number(value);
      if (!/^\d+(\.\d+)?$/.test(value) || cpu < 0.01) bad(`cpu must be the cores each host may use, at least 0.01, like 0.5 or 2, got '${value}'`);
      e.cpu = cpu;
    } else if (key === 'bandwidth') {
      e.bandwidthBitsPerS = parseBitsPerS(value) ?? bad(BANDWIDTH_HINT(value));
    } else if (key === 'latency') {
      e.latencyMs = parseLatencyMs(value) ?? bad(LATENCY_HINT(value));
    } else {
      bad(`unknown key '${key}'; use cpu, bandwidth, latency`);
    }
  }
  if (e.cpu === null && e.bandwidthBitsPerS === null && e.latencyMs === null) bad('name at least one of cpu, bandwidth, latency');
  return e;
}
