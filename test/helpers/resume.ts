/**
 * What a resumed run must show besides its final bytes: a run that ignored the checkpoint and
 * started over from step 0 with the same seed ends with the same parameters, so the tests also
 * check that it started where the checkpoint stood and trained only the epochs that were left.
 */
import { expect } from 'vitest';
import { readModelFile } from '../../src/model/safetensors.js';
import type { TrainingPosition } from '../../coordinator/trainer.js';

/** The position a checkpoint file holds (its metadata, without decoding the tensors). */
export function checkpointPosition(path: string): TrainingPosition {
  const raw = readModelFile(path).metadata['dpt.checkpoint'];
  if (raw === undefined) throw new Error(`${path} is not a checkpoint`);
  return (JSON.parse(raw) as { position: TrainingPosition }).position;
}

/**
 * `jsonLines` is the resumed run's --json stdout. Its header must name the checkpoint's position
 * and its epoch lines must be those from the checkpoint's epoch to the last; the checkpoint must
 * lie past epoch 1, so that a run that started over would print epoch 1 and fail here.
 */
export function expectResumedFrom(jsonLines: string[], checkpoint: string, position: TrainingPosition, epochs: number): void {
  expect(position.epoch, 'the checkpoint must lie past epoch 1 for the epoch lines to tell a resume from a restart').toBeGreaterThan(1);
  const events = jsonLines.map((l) => JSON.parse(l) as { event: string; paramsSource?: string; epoch?: number });
  expect(events[0]!.paramsSource).toBe(
    `resumed from ${checkpoint} at epoch ${position.epoch}, step ${position.stepInEpoch} (${position.globalStep} steps done)`);
  const trained = events.filter((e) => e.event === 'epoch').map((e) => e.epoch);
  expect(trained, 'the resumed run trains only the epochs left').toEqual(
    Array.from({ length: epochs - position.epoch + 1 }, (_, i) => position.epoch + i));
}
