/**
 * Builds a training run from a TrainConfig: loads the data, picks the kernel engine, creates or
 * loads the parameters, starts the worker group. Kept apart from the loop so commands (train,
 * bench, coordinator) assemble runs the same way.
 */
import { deriveSeed, ConfigError, validateConfig, type TrainConfig } from '../src/config.js';
import { checkpointSettings, configForResume, loadCheckpoint, type Checkpoint } from './checkpoint.js';
import { loadMnist, slice, type Mnist } from '../src/data/mnist.js';
import type { LabelledImages } from '../src/data/idx.js';
import { initParams } from '../src/model/init.js';
import { Network } from '../src/model/network.js';
import { loadIntoParams, readModelFile, specFromMetadata } from '../src/model/safetensors.js';
import type { NetworkSpec } from '../src/model/spec.js';
import { Sgd } from '../src/optim/sgd.js';
import type { LrSchedule } from '../src/optim/lr-schedule.js';
import type { LocalSgdPlan } from '../src/optim/local-sgd.js';
import { createKernels } from '../src/tensor/engines.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { Rng } from '../src/tensor/rng.js';
import { InProcessGroup } from './inproc-group.js';
import { startWsGroup } from './launch.js';
import { ThreadGroup } from './thread-group.js';
import type { TrainingRun } from './trainer.js';
import type { WorkerGroup } from './worker-group.js';

export interface Session {
  config: TrainConfig;
  data: Mnist;
  train: LabelledImages;
  evalSet: LabelledImages;
  kernels: Kernels;
  kernelNotes: string[];
  network: Network;
  params: Float32Array;
  /** where the initial parameters came from, for the run header */
  paramsSource: string;
  /** the checkpoint being resumed, if any */
  resumed: Checkpoint | null;
}

/**
 * Loads data and model, without starting workers. `explicit` names the options the user typed;
 * with --resume they must agree with the checkpoint.
 */
export async function openSession(config: TrainConfig, data?: Mnist, explicit: ReadonlySet<string> = new Set()): Promise<Session> {
  validateConfig(config);
  if (config.resume !== null) {
    config = configForResume(config, checkpointSettings(config.resume), explicit);
    // the checkpoint's schedule against this run's --epochs
    validateConfig(config);
  }
  const mnist = data ?? loadMnist(config.dataDir ?? undefined);
  if (config.trainLimit !== null && config.trainLimit > mnist.train.count) {
    throw new ConfigError(`--train-limit ${config.trainLimit} exceeds the ${mnist.train.count} training images`);
  }
  const train = config.trainLimit === null ? mnist.train : slice(mnist.train, 0, config.trainLimit);
  const evalSet = config.evalSet === 'test' ? mnist.test : mnist.validation;
  const { kernels, notes } = await createKernels(config.kernels);
  let spec: NetworkSpec = config.spec;
  let fileTensors = null;
  if (config.initFrom !== null) {
    const file = readModelFile(config.initFrom);
    spec = specFromMetadata(file.metadata, config.initFrom) ?? spec;
    fileTensors = file.tensors;
    config = { ...config, spec };
  }
  const network = new Network(spec, kernels);
  const params = network.allocParams();
  let paramsSource: string;
  let resumed: Checkpoint | null = null;
  if (config.resume !== null) {
    resumed = loadCheckpoint(config.resume, network.layout);
    params.set(resumed.params);
    paramsSource = `resumed from ${config.resume} at epoch ${resumed.position.epoch}, step ${resumed.position.stepInEpoch} (${resumed.position.globalStep} steps done)`;
  } else if (fileTensors !== null) {
    loadIntoParams(fileTensors, network.layout, params, config.initFrom!);
    paramsSource = `loaded from ${config.initFrom}`;
  } else {
    initParams(params, network.layout, config.init, new Rng(deriveSeed(config.seed, 'init')));
    paramsSource = `${config.init} init, seed ${config.seed}`;
  }
  return { config, data: mnist, train, evalSet, kernels, kernelNotes: notes, network, params, paramsSource, resumed };
}

export async function startGroup(s: Session): Promise<WorkerGroup> {
  const { config } = s;
  switch (config.transport) {
    case 'inproc':
      return new InProcessGroup(config.spec, s.kernels, s.train, config.workers, config.batch);
    case 'ws':
      return startWsGroup(config, s.train, (line) => process.stderr.write(`${line}\n`), s.kernels);
    case 'threads':
      // the threads load the engine the coordinator resolved, so 'auto' means the same on both sides
      return ThreadGroup.start({
        spec: config.spec, kernels: s.kernels.name, coordinatorKernels: s.kernels, train: s.train, world: config.workers, maxBatch: config.batch, maxRoundSteps: config.averageEvery,
      });
    default:
      throw new ConfigError(`--transport ${config.transport} is not available yet; use --transport inproc or threads`);
  }
}

/** The run of a session on a started group; `evalWorkspace` lets several runs share one (they evaluate one at a time). */
export function trainingRun(s: Session, group: WorkerGroup, evalWorkspace = s.network.createWorkspace(1000)): TrainingRun {
  const { config } = s;
  const sgd = new Sgd(s.network.layout, s.kernels, {
    eta: config.eta, momentum: config.momentum, weightDecay: config.weightDecay, trainSize: s.train.count,
  });
  if (s.resumed?.velocity && sgd.velocity) sgd.velocity.set(s.resumed.velocity);
  return {
    network: s.network,
    sgd,
    group,
    params: s.params,
    train: s.train,
    evalSet: s.evalSet,
    evalWorkspace,
    orderRng: new Rng(deriveSeed(config.seed, 'order')),
    epochs: config.epochs,
    batch: config.batch,
    shuffle: config.shuffle,
    maxSteps: config.maxSteps,
    lrSchedule: lrScheduleOf(config),
    localSgd: localSgdOf(config),
    ...(s.resumed ? { resumeFrom: s.resumed.position } : {}),
  };
}

/** The config's local SGD plan; null with --average-every 1, where the ranks' gradients are averaged every step. */
export function localSgdOf(c: TrainConfig): LocalSgdPlan | null {
  if (c.averageEvery === 1) return null;
  return { every: c.averageEvery, afterEpochs: c.localSgdAfter, averageOptimizerState: c.averageOptimizerState };
}

/** The config's learning-rate schedule; null without --lr-scale, so η stays --eta and the step is the plain one. */
export function lrScheduleOf(c: TrainConfig): LrSchedule | null {
  if (c.lrScale === 'none' && c.warmupEpochs === 0) return null;
  return { eta: c.eta, scale: c.lrScale, referenceBatch: c.lrReferenceBatch, batch: c.batch, warmupEpochs: c.warmupEpochs };
}
