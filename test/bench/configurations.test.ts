import { describe, expect, it } from 'vitest';
import { benchConfigurations, cellConfig, configurationKey } from '../../bench/harness/configurations.js';
import { localSgdOf } from '../../coordinator/session.js';
import { BENCH_DEFAULTS, DEFAULTS, type BenchConfig } from '../../src/config.js';
import { cellName } from '../../src/profile/verdict.js';

type Grid = Pick<BenchConfig, 'transports' | 'workers' | 'averageEvery' | 'localSgdAfter' | 'averageOptimizerState'>;
const grid = (o: Partial<Grid>): Grid => ({ transports: ['inproc', 'threads'], workers: [1, 2], averageEvery: [1], localSgdAfter: 0, averageOptimizerState: false, ...o });

describe('the configurations dpt bench measures', () => {
  it('by default: the single-node baseline first, then every transport at every worker count, averaging every step', () => {
    const list = benchConfigurations(grid({ averageEvery: BENCH_DEFAULTS.averageEvery }));
    expect(list.map(cellName)).toEqual(['inproc x1', 'inproc x2', 'threads x1', 'threads x2']);
    expect(list.every((c) => c.averageEvery === 1)).toBe(true);
  });

  it('cross --average-every with the transports and worker counts, naming K where it is over 1', () => {
    const list = benchConfigurations(grid({ transports: ['inproc', 'threads'], workers: [1, 2, 4], averageEvery: [1, 16, 64] }));
    expect(list.map(cellName)).toEqual([
      'inproc x1', 'inproc x2', 'inproc x2 K=16', 'inproc x2 K=64', 'inproc x4', 'inproc x4 K=16', 'inproc x4 K=64',
      'threads x1', 'threads x2', 'threads x2 K=16', 'threads x2 K=64', 'threads x4', 'threads x4 K=16', 'threads x4 K=64',
    ]);
    expect(new Set(list.map(configurationKey)).size).toBe(list.length);
  });

  it('cross ws configurations with every --wire format, naming a 16-bit one; other transports send nothing over a wire and stay fp32', () => {
    const list = benchConfigurations({ ...grid({ transports: ['threads', 'ws'], workers: [1, 4], averageEvery: [1, 8] }), wire: ['fp32', 'bf16'] });
    expect(list.map(cellName)).toEqual([
      'inproc x1', 'threads x1', 'threads x4', 'threads x4 K=8',
      'ws x1', 'ws x1 bf16', 'ws x4', 'ws x4 bf16', 'ws x4 K=8', 'ws x4 K=8 bf16',
    ]);
    expect(list.filter((c) => c.transport !== 'ws').every((c) => c.wire === 'fp32')).toBe(true);
    expect(new Set(list.map(configurationKey)).size).toBe(list.length);
    expect(cellConfig(DEFAULTS, list.at(-1)!, 128, 1, null)).toMatchObject({ transport: 'ws', workers: 4, averageEvery: 8, wire: 'bf16' });
  });

  it('run one worker once, at K = 1, even when the list holds no 1: one rank has nothing to average', () => {
    const list = benchConfigurations(grid({ transports: ['threads'], workers: [1, 2], averageEvery: [16] }));
    expect(list.map(cellName)).toEqual(['inproc x1', 'threads x1', 'threads x2 K=16']);
    expect(list.filter((c) => c.workers === 1).every((c) => c.averageEvery === 1)).toBe(true);
  });

  it('give the local SGD settings to K > 1 only, where they mean something', () => {
    const list = benchConfigurations(grid({ transports: ['threads'], workers: [2], averageEvery: [1, 16], localSgdAfter: 2, averageOptimizerState: true }));
    expect(list.map((c) => [cellName(c), c.localSgdAfter, c.averageOptimizerState])).toEqual([
      ['inproc x1', 0, false], ['threads x2', 0, false], ['threads x2 K=16', 2, true],
    ]);
  });

  it('hand every cell\'s training run the local SGD plan of its configuration', () => {
    const list = benchConfigurations(grid({ transports: ['threads'], workers: [2], averageEvery: [1, 16], localSgdAfter: 1, averageOptimizerState: true }));
    const base = { ...DEFAULTS, momentum: 0.9 };
    const plans = list.map((c) => localSgdOf(cellConfig(base, c, 1024, 3, null)));
    expect(plans).toEqual([null, null, { every: 16, afterEpochs: 1, averageOptimizerState: true }]);
    const config = cellConfig(base, list[2]!, 1024, 3, 500);
    expect([config.transport, config.workers, config.averageEvery, config.batch, config.epochs, config.maxSteps, config.momentum])
      .toEqual(['threads', 2, 16, 1024, 3, 500, 0.9]);
  });
});
