/**
 * The checkpoint file in-process: what goes in comes back bit for bit, the file is also a model
 * file, broken or foreign files are refused with a ConfigError, and a resumed run's settings come
 * from the checkpoint unless a flag typed on purpose disagrees.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkpointSettings, configForResume, loadCheckpoint, RESUME_FIELDS, saveCheckpoint, settingsOf, type Checkpoint,
} from '../../coordinator/checkpoint.js';
import type { TrainingPosition } from '../../coordinator/trainer.js';
import { ConfigError, DEFAULTS, type TrainConfig } from '../../src/config.js';
import { encodeSafetensors, loadIntoParams, readModelFile, saveModel, specFromMetadata, specMetadata } from '../../src/model/safetensors.js';
import { layoutFor, type NetworkSpec } from '../../src/model/spec.js';
import { ParamLayout } from '../../src/tensor/layout.js';
import { Rng } from '../../src/tensor/rng.js';
import { tempDir } from '../helpers/idx-fixtures.js';

const SPEC: NetworkSpec = { sizes: [6, 5, 3], activation: 'tanh', cost: 'cross-entropy' };
const layout = layoutFor(SPEC);

function randomBuffer(seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: layout.size }, () => rng.nextGaussian());
}

const rng = new Rng(3);
rng.nextGaussian(); // leaves a spare Gaussian cached, which the state must carry too
const POSITION: TrainingPosition = {
  epoch: 2, stepInEpoch: 7, globalStep: 1007, epochLoss: 12.375, epochExamples: 70, epochSeconds: 1.5,
  orderRngAtEpochStart: rng.getState(),
  reports: [{
    epoch: 1, steps: 1000, examples: 10_000, loss: 0.25, testCorrect: 9000, testTotal: 10_000,
    trainSeconds: 3, evalSeconds: 0.5, samplesPerSecond: 3333.5,
  }],
};

const SETTINGS: Checkpoint['settings'] = {
  spec: SPEC, batch: 10, eta: 0.1, lrScale: 'sqrt', lrReferenceBatch: 5, warmupEpochs: 2, momentum: 0.9, weightDecay: 5, seed: 42, shuffle: false, trainLimit: 3000,
  averageEvery: 16, localSgdAfter: 2, averageOptimizerState: true, workers: 3,
};

function checkpoint(velocity: boolean): Checkpoint {
  return { position: POSITION, settings: SETTINGS, params: randomBuffer(1), velocity: velocity ? randomBuffer(2) : null };
}

describe('checkpoint files', () => {
  it('give back the parameters, velocity, position and settings bit for bit', () => {
    const path = join(tempDir(), 'run.ckpt');
    const c = checkpoint(true);
    saveCheckpoint(path, layout, c);
    const back = loadCheckpoint(path, layout);
    expect(back.params).toEqual(c.params);
    expect(back.velocity).toEqual(c.velocity);
    expect(back.position).toEqual(POSITION);
    expect(back.settings).toEqual(SETTINGS);
    expect(checkpointSettings(path)).toEqual(SETTINGS);
  });

  it('give back each rank\'s own momentum buffer (local SGD) bit for bit, as tensors beside the parameters', () => {
    const path = join(tempDir(), 'run.ckpt');
    const rankVelocities = [randomBuffer(5), randomBuffer(6), randomBuffer(7)];
    saveCheckpoint(path, layout, { ...checkpoint(true), position: { ...POSITION, rankVelocities } });
    const back = loadCheckpoint(path, layout);
    expect(back.position.rankVelocities).toEqual(rankVelocities);
    const { rankVelocities: _r, ...rest } = back.position;
    expect(rest).toEqual(POSITION);
    expect(back.velocity).toEqual(checkpoint(true).velocity);
    expect([...readModelFile(path).tensors.keys()].slice(-4)).toEqual(['optimizer.velocity', 'optimizer.rank0.velocity', 'optimizer.rank1.velocity', 'optimizer.rank2.velocity']);
    // the metadata stays small: the buffers are tensors, not JSON
    expect(readModelFile(path).metadata['dpt.checkpoint']!.length).toBeLessThan(2000);
  });

  it('give back no rank buffers when the run kept none', () => {
    const path = join(tempDir(), 'run.ckpt');
    saveCheckpoint(path, layout, checkpoint(true));
    expect(loadCheckpoint(path, layout).position.rankVelocities).toBeUndefined();
  });

  it('a checkpoint missing one of its rank buffers, or with one of the wrong size, is refused', () => {
    const dir = tempDir();
    const meta = { ...specMetadata(SPEC), 'dpt.checkpoint': JSON.stringify({ format: 1, position: POSITION, ranks: 2, settings: SETTINGS }) };
    const oneRank = new ParamLayout([
      ...layout.tensors.map((t) => ({ name: t.name, shape: t.shape, decays: t.decays })),
      { name: 'optimizer.rank0.velocity', shape: [layout.size], decays: false },
    ]);
    const missing = join(dir, 'missing.ckpt');
    writeFileSync(missing, encodeSafetensors(oneRank, new Float32Array(oneRank.size), meta));
    expect(() => loadCheckpoint(missing, layout)).toThrow(ConfigError);
    expect(() => loadCheckpoint(missing, layout)).toThrow(/optimizer\.rank1\.velocity is missing/);
    const short = new ParamLayout([...oneRank.tensors.map((t) => ({ name: t.name, shape: t.shape, decays: t.decays })),
      { name: 'optimizer.rank1.velocity', shape: [layout.size - 1], decays: false }]);
    const wrong = join(dir, 'short.ckpt');
    writeFileSync(wrong, encodeSafetensors(short, new Float32Array(short.size), meta));
    expect(() => loadCheckpoint(wrong, layout)).toThrow(/optimizer\.rank1\.velocity is missing or has the wrong size/);
  });

  it('have no velocity without momentum', () => {
    const path = join(tempDir(), 'run.ckpt');
    saveCheckpoint(path, layout, checkpoint(false));
    const back = loadCheckpoint(path, layout);
    expect(back.velocity).toBeNull();
    expect(back.params).toEqual(checkpoint(false).params);
    expect([...readModelFile(path).tensors.keys()]).toEqual(layout.tensors.map((t) => t.name));
  });

  it('load as model files too (--init-from): the network spec and the parameters', () => {
    const path = join(tempDir(), 'run.ckpt');
    const c = checkpoint(true);
    saveCheckpoint(path, layout, c);
    const file = readModelFile(path);
    expect(specFromMetadata(file.metadata, path)).toEqual(SPEC);
    const params = new Float32Array(layout.size);
    loadIntoParams(file.tensors, layout, params, path);
    expect(params).toEqual(c.params);
  });

  it('replace an older checkpoint at the same path and leave no temporary file behind', () => {
    const dir = tempDir();
    const path = join(dir, 'run.ckpt');
    saveCheckpoint(path, layout, checkpoint(true));
    const newer = { ...checkpoint(true), params: randomBuffer(9), position: { ...POSITION, globalStep: 2000 } };
    saveCheckpoint(path, layout, newer);
    expect(readdirSync(dir)).toEqual(['run.ckpt']);
    const back = loadCheckpoint(path, layout);
    expect(back.params).toEqual(newer.params);
    expect(back.position.globalStep).toBe(2000);
  });

  it('a plain model file is refused as a checkpoint, naming --init-from as the way to use it', () => {
    const path = join(tempDir(), 'model.safetensors');
    saveModel(path, layout, randomBuffer(1), SPEC);
    expect(() => loadCheckpoint(path, layout)).toThrow(ConfigError);
    expect(() => loadCheckpoint(path, layout)).toThrow(/--init-from/);
    expect(() => checkpointSettings(path)).toThrow(ConfigError);
    expect(() => checkpointSettings(path)).toThrow(/--init-from/);
  });

  it('damaged checkpoint metadata and an unknown format are refused', () => {
    const dir = tempDir();
    const withMeta = (name: string, meta: string): string => {
      const path = join(dir, name);
      writeFileSync(path, encodeSafetensors(layout, randomBuffer(1), { ...specMetadata(SPEC), 'dpt.checkpoint': meta }));
      return path;
    };
    const valid = JSON.stringify({ format: 1, position: POSITION, settings: SETTINGS });
    expect(loadCheckpoint(withMeta('ok.ckpt', valid), layout).settings).toEqual(SETTINGS);
    expect(() => loadCheckpoint(withMeta('damaged.ckpt', valid.slice(0, -3)), layout)).toThrow(ConfigError);
    expect(() => loadCheckpoint(withMeta('future.ckpt', JSON.stringify({ format: 2, position: POSITION, settings: SETTINGS })), layout)).toThrow(ConfigError);
  });

  it('a checkpoint of another network, or with a velocity of the wrong size, is refused', () => {
    const dir = tempDir();
    const path = join(dir, 'run.ckpt');
    saveCheckpoint(path, layout, checkpoint(true));
    const other = layoutFor({ ...SPEC, sizes: [6, 4, 3] });
    expect(() => loadCheckpoint(path, other)).toThrow(ConfigError);

    const shortVelocity = new ParamLayout([
      ...layout.tensors.map((t) => ({ name: t.name, shape: t.shape, decays: t.decays })),
      { name: 'optimizer.velocity', shape: [layout.size - 1], decays: false },
    ]);
    const bad = join(dir, 'bad-velocity.ckpt');
    const meta = { ...specMetadata(SPEC), 'dpt.checkpoint': JSON.stringify({ format: 1, position: POSITION, settings: SETTINGS }) };
    writeFileSync(bad, encodeSafetensors(shortVelocity, new Float32Array(shortVelocity.size), meta));
    expect(() => loadCheckpoint(bad, layout)).toThrow(ConfigError);
  });
});

describe('the config of a resumed run', () => {
  // every setting that shapes the mathematics differs from the checkpoint's
  const typed: TrainConfig = {
    ...DEFAULTS, spec: { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' },
    batch: 20, eta: 3, momentum: 0, weightDecay: 0, seed: 1, shuffle: true, trainLimit: null, epochs: 7, workers: 3,
  };

  it('takes every setting that shapes the mathematics from the checkpoint, the others from the command line', () => {
    const out = configForResume(typed, SETTINGS, new Set());
    for (const field of RESUME_FIELDS) expect(out[field]).toEqual(SETTINGS[field]);
    expect(out.epochs).toBe(7);
    expect(out.workers).toBe(3);
    expect(typed.batch).toBe(20); // the caller's config is left as it was
  });

  it('refuses a flag typed with another value than the checkpoint, naming the flag', () => {
    const cases: [string, RegExp][] = [
      ['sizes', /--sizes/], ['activation', /--activation/], ['cost', /--cost/], ['batch', /--batch/], ['eta', /--eta/],
      ['momentum', /--momentum/], ['weightDecay', /--weight-decay/], ['seed', /--seed/], ['shuffle', /--no-shuffle/],
      ['trainLimit', /--train-limit/], ['lrScale', /--lr-scale/], ['lrReferenceBatch', /--lr-reference-batch/],
      ['warmupEpochs', /--warmup-epochs/], ['averageEvery', /--average-every/], ['localSgdAfter', /--local-sgd-after/],
      ['averageOptimizerState', /--average-optimizer-state/],
    ];
    for (const [option, flag] of cases) {
      expect(() => configForResume(typed, SETTINGS, new Set([option]))).toThrow(ConfigError);
      expect(() => configForResume(typed, SETTINGS, new Set([option]))).toThrow(flag);
    }
  });

  it('reads a checkpoint saved before the learning-rate schedule existed as one without scaling or warmup', () => {
    const { lrScale: _s, lrReferenceBatch: _r, warmupEpochs: _w, ...older } = SETTINGS;
    const out = configForResume({ ...typed, lrScale: 'linear', warmupEpochs: 1 }, older as Checkpoint['settings'], new Set());
    expect([out.lrScale, out.lrReferenceBatch, out.warmupEpochs]).toEqual([DEFAULTS.lrScale, DEFAULTS.lrReferenceBatch, DEFAULTS.warmupEpochs]);
    expect(() => configForResume({ ...typed, lrScale: 'linear' }, older as Checkpoint['settings'], new Set(['lrScale']))).toThrow(/--lr-scale/);
  });

  it('reads a checkpoint saved before local SGD existed as one averaging every step', () => {
    const { averageEvery: _k, localSgdAfter: _e, averageOptimizerState: _o, workers: _w, ...older } = SETTINGS;
    const out = configForResume({ ...typed, averageEvery: 16 }, older as Checkpoint['settings'], new Set());
    expect([out.averageEvery, out.localSgdAfter, out.averageOptimizerState]).toEqual([1, 0, false]);
    expect(() => configForResume({ ...typed, averageEvery: 16 }, older as Checkpoint['settings'], new Set(['averageEvery']))).toThrow(/--average-every conflicts with the checkpoint \(1 there, 16 here\)/);
  });

  it('with local SGD keeps the checkpoint’s worker count, and refuses another one typed on purpose', () => {
    const local = { ...SETTINGS, workers: 2 };
    expect(configForResume(typed, local, new Set()).workers).toBe(2);
    expect(() => configForResume(typed, local, new Set(['workers']))).toThrow(ConfigError);
    expect(() => configForResume(typed, local, new Set(['workers']))).toThrow(/--workers conflicts with the checkpoint \(2 there, 3 here\)/);
  });

  it('averaging every step leaves the worker count to the command line (a run may resume on more or fewer workers)', () => {
    const perStep = settingsOf({ ...DEFAULTS, workers: 2 });
    expect(perStep.workers).toBeUndefined();
    expect(configForResume({ ...typed, workers: 4 }, perStep, new Set(['workers'])).workers).toBe(4);
    expect(settingsOf({ ...DEFAULTS, workers: 2, averageEvery: 16 }).workers).toBe(2);
  });

  it('accepts a flag typed with the checkpoint’s own value', () => {
    const same: TrainConfig = { ...typed, ...SETTINGS };
    const explicit = new Set(['sizes', 'activation', 'cost', ...RESUME_FIELDS]);
    expect(configForResume(same, SETTINGS, explicit)).toEqual({ ...typed, ...SETTINGS });
  });
});
