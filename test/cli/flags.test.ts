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
    [['--lr-scale', 'cubic'], /--lr-scale must be one of none, linear, sqrt, got 'cubic'/],
    [['--lr-reference-batch', '0'], /--lr-reference-batch must be a positive integer, got '0'/],
    [['--warmup-epochs', '-1'], /--warmup-epochs must be a number >= 0, got '-1'/],
    [['--warmup-epochs', '2'], /--warmup-epochs needs --lr-scale linear or sqrt: with none there is nothing to warm up to/],
    [['--lr-scale', 'linear', '--batch', '40', '--epochs', '1', '--warmup-epochs', '1.5'], /--warmup-epochs 1.5 exceeds --epochs 1: .* lower --warmup-epochs or raise --epochs/],
    [['--lr-scale', 'sqrt', '--warmup-epochs', '1'], /--warmup-epochs has nothing to warm up to: --batch 10 equals --lr-reference-batch/],
    [['--wire', 'fp8'], /--wire must be one of fp32, fp16, bf16, got 'fp8'/],
    [['--wire', 'fp16', '--transport', 'threads', '--workers', '2'], /--wire fp16 sets the format of what crosses the WebSocket, and --transport threads sends nothing over a wire .*: drop --wire or use dpt launch/],
    [['--wire', 'bf16'], /--wire bf16 sets the format of what crosses the WebSocket, and --transport inproc sends nothing over a wire/],
    [['--average-every', '0'], /--average-every must be a positive integer, got '0'/],
    [['--average-every', '2.5'], /--average-every must be a positive integer, got '2.5'/],
    [['--local-sgd-after', '1.5'], /--local-sgd-after must be a non-negative integer, got '1.5'/],
    [['--local-sgd-after', '2'], /--local-sgd-after 2 needs --average-every K > 1: .* add e\.g\. --average-every 16 or drop --local-sgd-after/],
    [['--average-every', '16', '--epochs', '3', '--local-sgd-after', '3'], /--local-sgd-after 3 is not below --epochs 3: the run would end before local SGD starts; lower --local-sgd-after or raise --epochs/],
    [['--average-optimizer-state'], /--average-optimizer-state needs --average-every K > 1: .* add e\.g\. --average-every 16 or drop --average-optimizer-state/],
    [['--average-every', '16', '--average-optimizer-state'], /--average-optimizer-state averages the ranks' momentum buffers, and --momentum 0 keeps none: add e\.g\. --momentum 0\.9/],
    [['--average-only', '--transport', 'threads', '--workers', '2'], /--average-only makes the coordinator of WebSocket workers compute no rank, and --transport threads has none: drop --average-only, or use dpt launch/],
  ];
  for (const [args, message] of cases) {
    it(`dpt train ${args.join(' ')}`, () => {
      const r = dpt(['train', ...args]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).not.toMatch(/Epoch/);
    });
  }

  it('dpt launch and dpt coordinator check the local SGD flags as dpt train does', () => {
    for (const command of ['launch', 'coordinator']) {
      const r = dpt([command, '--local-sgd-after', '1', '--workers', '2']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--local-sgd-after 1 needs --average-every K > 1/);
    }
  });

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

  it('--help of every training command explains the local SGD flags, and train and bench show one in an example', () => {
    for (const command of ['train', 'launch', 'coordinator', 'bench']) {
      const help = dpt([command, '--help']).stdout;
      // commander wraps the descriptions to the terminal's width
      expect(help, command).toMatch(/--average-every <(k|list)>\s+local SGD:\s/);
      expect(help, command).toMatch(/--local-sgd-after <e>\s+with --average-every K:\s+average\s+every\s+step\s+for/);
      expect(help, command).toMatch(/--average-optimizer-state\s+with --average-every K:\s+average\s+the\s+ranks'\s+momentum/);
    }
    expect(dpt(['train', '--help']).stdout).toMatch(/^ {2}dpt train .*--average-every 16 --local-sgd-after 2$/m);
    expect(dpt(['bench', '--help']).stdout).toMatch(/^ {2}dpt bench .*--workers 1,2 --average-every 1,16,64 --target-accuracy 0\.95/m);
  });

  it('--help of every command that counts ws workers says what --workers counts and offers --average-only', () => {
    for (const command of ['train', 'launch', 'coordinator', 'bench']) {
      const help = dpt([command, '--help']).stdout.replace(/\s+/g, ' ');
      expect(help, command).toMatch(/--workers <(n|list)> .*the coordinator computes rank 0/);
      expect(help, command).toMatch(/--average-only .*the coordinator computes no rank and only averages/);
    }
    expect(dpt(['bench', '--average-only', '--transport', 'inproc,threads']).stderr).toMatch(/--average-only .* and --transport inproc,threads has none/);
  });
});

describe('local SGD with one worker', () => {
  it('trains as one node and says nothing about it: one rank has nothing to average', () => {
    const r = dpt(['train', '--average-every', '16', '--epochs', '1', '--max-steps', '3', '--train-limit', '100', '--kernels', 'js']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}workers +inproc x 1 \(single node\)$/m);
    expect(r.stdout).toMatch(/^Epoch 1: /m);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/averag|local SGD/i);
  });
});

describe('dpt bench refuses local SGD flags that do not go together, naming them', () => {
  const cases: [string[], RegExp][] = [
    [['--average-every', '1,0'], /--average-every must be a positive integer, got '0'/],
    [['--local-sgd-after', '1'], /--local-sgd-after 1 needs --average-every K > 1/],
    [['--average-optimizer-state', '--momentum', '0.9'], /--average-optimizer-state needs --average-every K > 1/],
    [['--average-every', '1,16', '--local-sgd-after', '1'], /--local-sgd-after counts epochs, and without --epochs or --target-accuracy .* add --epochs N or --target-accuracy A, or drop --local-sgd-after/],
    [['--average-every', '16', '--local-sgd-after', '2', '--epochs', '2'], /--local-sgd-after 2 is not below --epochs 2: .* raise --epochs/],
    [['--average-every', '16', '--local-sgd-after', '5', '--target-accuracy', '0.9', '--max-epochs', '5'], /--local-sgd-after 5 is not below --max-epochs 5: .* raise --max-epochs/],
  ];
  for (const [args, message] of cases) {
    it(`dpt bench ${args.join(' ')}`, () => {
      const r = dpt(['bench', ...args]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    });
  }
});
