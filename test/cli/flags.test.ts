import { describe, expect, it } from 'vitest';
import { dpt } from '../helpers/cli.js';

describe('bad flags get an error that names the flag', () => {
  const cases: [string[], RegExp][] = [
    [['--batch', '0'], /--batch must be a positive integer, got '0'/],
    [['--batch', '2.5'], /--batch must be a positive integer, got '2.5'/],
    [['--sizes', '784,x'], /--sizes must be a comma-separated list of at least two positive integers, got '784,x'/],
    [['--sizes', '100,10'], /--sizes must start with 784/],
    [['--eta', '-1'], /--eta must be a number > 0, got '-1'/],
    [['--momentum', '1'], /--momentum must be a number >= 0 and < 1, got '1'/],
    [['--activation', 'softplus'], /--activation must be one of sigmoid, relu, tanh, got 'softplus'/],
    [['--kernels', 'cuda'], /--kernels must be one of auto, js, wasm, blas, got 'cuda'/],
    [['--data-dir', '/no/such/dir'], /data directory \/no\/such\/dir does not exist: pass --data-dir DIR/],
    [['--init-from', '/no/such/file.safetensors'], /\/no\/such\/file\.safetensors: cannot read \(ENOENT\)/],
  ];
  for (const [args, message] of cases) {
    it(`dpt train ${args.join(' ')}`, () => {
      const r = dpt(['train', ...args]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).not.toMatch(/Epoch/);
    });
  }

  it('an unknown flag is named and help is suggested', () => {
    const r = dpt(['train', '--bacth', '10']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown option '--bacth'/);
  });

  it('--help shows examples', () => {
    const r = dpt(['train', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:/);
    expect(r.stdout).toMatch(/--sizes <list>/);
  });
});
