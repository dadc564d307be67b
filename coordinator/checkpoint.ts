/**
 * Checkpoints: everything needed to continue training bit-identically — parameters, optimizer
 * velocity (and with local SGD each rank's own), the position in the epoch, the data-order rng state and the hyper-parameters that
 * shape the mathematics — in one safetensors file (so a checkpoint also loads as a model with
 * --init-from). Written atomically: a temporary file, fsync, rename, fsync of the folder, so a
 * crash leaves either the old checkpoint or the new one, never half of one.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, DEFAULTS, type TrainConfig } from '../src/config.js';
import { encodeSafetensors, readModelFile, specMetadata, type SafeTensor } from '../src/model/safetensors.js';
import { ParamLayout } from '../src/tensor/layout.js';
import type { TrainingPosition } from './trainer.js';

const FORMAT = 1;
const VELOCITY = 'optimizer.velocity';
/** local SGD without --average-optimizer-state: rank r's own momentum buffer */
const rankVelocity = (r: number): string => `optimizer.rank${r}.velocity`;

/** The settings a resumed run must share with the interrupted one, or its result would differ. */
export const RESUME_FIELDS = [
  'spec', 'batch', 'eta', 'lrScale', 'lrReferenceBatch', 'warmupEpochs', 'momentum', 'weightDecay', 'seed', 'shuffle', 'trainLimit',
  'averageEvery', 'localSgdAfter', 'averageOptimizerState',
] as const;
type ResumeField = (typeof RESUME_FIELDS)[number];
const FLAG: Record<ResumeField, string> = {
  spec: '--sizes/--activation/--cost', batch: '--batch', eta: '--eta', lrScale: '--lr-scale', lrReferenceBatch: '--lr-reference-batch',
  warmupEpochs: '--warmup-epochs', momentum: '--momentum',
  weightDecay: '--weight-decay', seed: '--seed', shuffle: '--no-shuffle', trainLimit: '--train-limit',
  averageEvery: '--average-every', localSgdAfter: '--local-sgd-after', averageOptimizerState: '--average-optimizer-state',
};

/**
 * What a checkpoint records of its run. With local SGD (averageEvery > 1) the worker count is among
 * them: each rank trains a model of its own between averagings, so the number of ranks shapes the
 * result. Averaging every step it does not, and a run may resume on more or fewer workers.
 */
export type CheckpointSettings = Pick<TrainConfig, ResumeField> & { workers?: number };

export function settingsOf(c: TrainConfig): CheckpointSettings {
  const settings = Object.fromEntries(RESUME_FIELDS.map((f) => [f, c[f]])) as CheckpointSettings;
  return c.averageEvery > 1 ? { ...settings, workers: c.workers } : settings;
}

export interface Checkpoint {
  /** with local SGD and momentum kept per rank, position.rankVelocities holds each rank's buffer */
  position: TrainingPosition;
  settings: CheckpointSettings;
  params: Float32Array;
  velocity: Float32Array | null;
}

export function saveCheckpoint(path: string, layout: ParamLayout, c: Checkpoint): void {
  // the rank buffers go in as tensors, the rest of the position as JSON
  const { rankVelocities = [], ...position } = c.position;
  const buffers = [...(c.velocity ? [{ name: VELOCITY, data: c.velocity }] : []), ...rankVelocities.map((data, r) => ({ name: rankVelocity(r), data }))];
  const entries = layout.tensors.map((t) => ({ name: t.name, shape: t.shape, decays: t.decays }));
  const withBuffers = new ParamLayout([...entries, ...buffers.map((b) => ({ name: b.name, shape: [layout.size], decays: false }))]);
  const flat = new Float32Array(withBuffers.size);
  flat.set(c.params);
  for (const [i, b] of buffers.entries()) {
    if (b.data.length !== layout.size) throw new RangeError(`checkpoint buffer ${b.name} holds ${b.data.length} floats, not the ${layout.size} of the parameters`);
    flat.set(b.data, layout.size * (i + 1));
  }
  const metadata = {
    ...specMetadata(c.settings.spec),
    'dpt.checkpoint': JSON.stringify({ format: FORMAT, position, ranks: rankVelocities.length, settings: c.settings }),
  };
  writeAtomically(path, encodeSafetensors(withBuffers, flat, metadata));
}

export function loadCheckpoint(path: string, layout: ParamLayout): Checkpoint {
  const file = readModelFile(path);
  const raw = file.metadata['dpt.checkpoint'];
  if (raw === undefined) throw new ConfigError(`${path} is a model file, not a checkpoint: use --init-from ${path} to start from its parameters`);
  let meta: { format: number; position: TrainingPosition; ranks?: number; settings: CheckpointSettings };
  try {
    meta = JSON.parse(raw);
  } catch {
    throw new ConfigError(`${path}: the checkpoint metadata is not valid JSON; the file is damaged`);
  }
  if (meta.format !== FORMAT) throw new ConfigError(`${path}: checkpoint format ${meta.format} is not supported (this dpt reads format ${FORMAT})`);
  const params = new Float32Array(layout.size);
  for (const t of layout.tensors) params.set(tensorOf(file.tensors, t.name, t.size, path), t.offset);
  const velocity = file.tensors.has(VELOCITY) ? tensorOf(file.tensors, VELOCITY, layout.size, path) : null;
  const ranks = meta.ranks ?? 0;
  const position = ranks === 0 ? meta.position
    : { ...meta.position, rankVelocities: Array.from({ length: ranks }, (_, r) => tensorOf(file.tensors, rankVelocity(r), layout.size, path)) };
  return { position, settings: meta.settings, params, velocity };
}

/** The checkpoint's settings without decoding its tensors (the CLI needs them before it builds a network). */
export function checkpointSettings(path: string): CheckpointSettings {
  const raw = readModelFile(path).metadata['dpt.checkpoint'];
  if (raw === undefined) throw new ConfigError(`${path} is a model file, not a checkpoint: use --init-from ${path} to start from its parameters`);
  return (JSON.parse(raw) as { settings: CheckpointSettings }).settings;
}

/**
 * The config of a resumed run: the checkpoint's settings for everything that shapes the
 * mathematics; a flag given explicitly with another value is an error naming it.
 */
export function configForResume(config: TrainConfig, settings: CheckpointSettings, explicit: ReadonlySet<string>): TrainConfig {
  const out: TrainConfig = { ...config };
  for (const field of RESUME_FIELDS) {
    // a checkpoint written before a setting existed was trained with its default
    const saved = settings[field] === undefined ? DEFAULTS[field] : settings[field];
    const mine = JSON.stringify(config[field]);
    const theirs = JSON.stringify(saved);
    if (mine !== theirs && explicitFieldSet(field, explicit)) {
      throw new ConfigError(`${FLAG[field]} conflicts with the checkpoint (${theirs} there, ${mine} here): a resumed run keeps the settings it was started with; drop the flag`);
    }
    (out as unknown as Record<string, unknown>)[field] = saved;
  }
  if (settings.workers !== undefined && settings.workers !== config.workers) {
    if (explicit.has('workers')) {
      throw new ConfigError(`--workers conflicts with the checkpoint (${settings.workers} there, ${config.workers} here): with --average-every ${out.averageEvery} `
        + 'each rank trains a model of its own between averagings, so a resumed run keeps its worker count; drop the flag');
    }
    out.workers = settings.workers;
  }
  return out;
}

function explicitFieldSet(field: ResumeField, explicit: ReadonlySet<string>): boolean {
  if (field === 'spec') return explicit.has('sizes') || explicit.has('activation') || explicit.has('cost');
  return explicit.has(field);
}

function tensorOf(tensors: Map<string, SafeTensor>, name: string, size: number, path: string): Float32Array {
  const t = tensors.get(name);
  if (!t || t.data.length !== size) throw new ConfigError(`${path}: checkpoint tensor ${name} is missing or has the wrong size; does the checkpoint belong to this network?`);
  return t.data;
}

function writeAtomically(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dir = openSync(dirname(path), 'r');
    fsyncSync(dir);
    closeSync(dir);
  } catch {
    // some file systems refuse fsync on a folder; the rename is still atomic
  }
}

