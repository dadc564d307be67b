/**
 * Checkpoints: everything needed to continue training bit-identically — parameters, optimizer
 * velocity, the position in the epoch, the data-order rng state and the hyper-parameters that
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

/** The settings a resumed run must share with the interrupted one, or its result would differ. */
export const RESUME_FIELDS = [
  'spec', 'batch', 'eta', 'lrScale', 'lrReferenceBatch', 'warmupEpochs', 'momentum', 'weightDecay', 'seed', 'shuffle', 'trainLimit',
] as const;
type ResumeField = (typeof RESUME_FIELDS)[number];
const FLAG: Record<ResumeField, string> = {
  spec: '--sizes/--activation/--cost', batch: '--batch', eta: '--eta', lrScale: '--lr-scale', lrReferenceBatch: '--lr-reference-batch',
  warmupEpochs: '--warmup-epochs', momentum: '--momentum',
  weightDecay: '--weight-decay', seed: '--seed', shuffle: '--no-shuffle', trainLimit: '--train-limit',
};

export interface Checkpoint {
  position: TrainingPosition;
  settings: Pick<TrainConfig, ResumeField>;
  params: Float32Array;
  velocity: Float32Array | null;
}

export function saveCheckpoint(path: string, layout: ParamLayout, c: Checkpoint): void {
  const entries = layout.tensors.map((t) => ({ name: t.name, shape: t.shape, decays: t.decays }));
  const withVelocity = c.velocity ? new ParamLayout([...entries, { name: VELOCITY, shape: [layout.size], decays: false }]) : layout;
  const flat = new Float32Array(withVelocity.size);
  flat.set(c.params);
  if (c.velocity) flat.set(c.velocity, layout.size);
  const metadata = {
    ...specMetadata(c.settings.spec),
    'dpt.checkpoint': JSON.stringify({ format: FORMAT, position: c.position, settings: c.settings }),
  };
  writeAtomically(path, encodeSafetensors(withVelocity, flat, metadata));
}

export function loadCheckpoint(path: string, layout: ParamLayout): Checkpoint {
  const file = readModelFile(path);
  const raw = file.metadata['dpt.checkpoint'];
  if (raw === undefined) throw new ConfigError(`${path} is a model file, not a checkpoint: use --init-from ${path} to start from its parameters`);
  let meta: { format: number; position: TrainingPosition; settings: Checkpoint['settings'] };
  try {
    meta = JSON.parse(raw);
  } catch {
    throw new ConfigError(`${path}: the checkpoint metadata is not valid JSON; the file is damaged`);
  }
  if (meta.format !== FORMAT) throw new ConfigError(`${path}: checkpoint format ${meta.format} is not supported (this dpt reads format ${FORMAT})`);
  const params = new Float32Array(layout.size);
  for (const t of layout.tensors) params.set(tensorOf(file.tensors, t.name, t.size, path), t.offset);
  const velocity = file.tensors.has(VELOCITY) ? tensorOf(file.tensors, VELOCITY, layout.size, path) : null;
  return { position: meta.position, settings: meta.settings, params, velocity };
}

/** The checkpoint's settings without decoding its tensors (the CLI needs them before it builds a network). */
export function checkpointSettings(path: string): Checkpoint['settings'] {
  const raw = readModelFile(path).metadata['dpt.checkpoint'];
  if (raw === undefined) throw new ConfigError(`${path} is a model file, not a checkpoint: use --init-from ${path} to start from its parameters`);
  return (JSON.parse(raw) as { settings: Checkpoint['settings'] }).settings;
}

/**
 * The config of a resumed run: the checkpoint's settings for everything that shapes the
 * mathematics; a flag given explicitly with another value is an error naming it.
 */
export function configForResume(config: TrainConfig, settings: Checkpoint['settings'], explicit: ReadonlySet<string>): TrainConfig {
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

