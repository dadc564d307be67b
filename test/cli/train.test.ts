import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dpt } from '../helpers/cli.js';
import { tempDir } from '../helpers/idx-fixtures.js';

describe('dpt train on the real MNIST files', () => {
  it("one epoch of Nielsen's network reaches at least 90% test accuracy", () => {
    const dir = tempDir();
    const model = join(dir, 'net.safetensors');
    const r = dpt(['train', '--epochs', '1', '--save', model]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/dpt train: 784-30-10 sigmoid/);
    const m = r.stdout.match(/Epoch 1: (\d+) \/ 10000/);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(9000);

    // the saved model evaluates to the same count
    const e = dpt(['evaluate', '--model', model, '--json']);
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout).correct).toBe(Number(m![1]));
  }, 180_000);

  it('--json prints one object per line with the documented fields', () => {
    const r = dpt(['train', '--json', '--epochs', '2', '--train-limit', '500', '--batch', '10']);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e) => e.event)).toEqual(['config', 'epoch', 'epoch', 'done']);
    for (const key of ['epoch', 'testCorrect', 'testTotal', 'trainSeconds', 'samplesPerSecond', 'loss']) {
      expect(events[1]).toHaveProperty(key);
    }
    expect(events[1].examples).toBe(500);
    expect(events[3].steps).toBe(100);
  });

  it('the same seed gives bit-identical parameters; another seed does not', () => {
    const dir = tempDir();
    const run = (name: string, seed: string) => {
      const path = join(dir, name);
      const r = dpt(['train', '--json', '--epochs', '1', '--max-steps', '150', '--seed', seed, '--save', path]);
      expect(r.code).toBe(0);
      return readFileSync(path);
    };
    const a = run('a', '3');
    const b = run('b', '3');
    const c = run('c', '4');
    expect(Buffer.compare(a, b)).toBe(0);
    expect(Buffer.compare(a, c)).not.toBe(0);
  });

  it('--init-from continues from a saved model', () => {
    const dir = tempDir();
    const first = join(dir, 'first');
    expect(dpt(['train', '--json', '--epochs', '1', '--train-limit', '2000', '--save', first]).code).toBe(0);
    const r = dpt(['train', '--json', '--epochs', '1', '--train-limit', '10', '--max-steps', '1', '--init-from', first]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.split('\n')[0]!).paramsSource).toBe(`loaded from ${first}`);
  });
});
