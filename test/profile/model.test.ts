import { describe, expect, it } from 'vitest';
import { shardRange } from '../../src/data/batches.js';
import { nnls } from '../../src/profile/least-squares.js';
import { curveAt, fitCostModel, predictStep, type CostModel, type Scenario, type TransportModel } from '../../src/profile/model.js';
import { netShape, type CellObservation } from '../../src/profile/observe.js';
import { breakEven, validateOnOneWorker } from '../../src/profile/analysis.js';
import { parseWhatIf } from '../../src/profile/what-if.js';
import { Rng } from '../../src/tensor/rng.js';

const CORES = 2;
const NETS = [netShape([784, 30, 10]), netShape([784, 256, 256, 10])];
/** one rank's step-to-step round trip ÷ its median, sorted: a slow step now and then */
const SPREAD = [0.9, 0.95, 1, 1.05, 1.3];
/** compute of two ranks at once ÷ one alone, by net */
const CONTENTION = { '784-30-10': 1.05, '784-256-256-10': 1.15 };

function transportTruth(transport: string, concurrent: boolean, o: Partial<TransportModel>): TransportModel {
  return {
    transport, concurrent, computePerShardMs: 0.02, computePerParamMs: 2e-6, computePerMacMs: 1.4e-6,
    coordPerMessageMs: 0, coordPerByteMs: 0, serialPerMessageMs: null, serialPerByteMs: 0, wirePerMessageMs: 0, wirePerByteMs: 0,
    bytesFixed: 0, bytesPerParam: 0, bytesPerExample: 0, overheadMs: 0.03, spreads: { 'any@1': SPREAD }, cells: 0, rmsMs: 0, computeCurveScale: null, ...o,
  };
}

/** The model the synthetic timings are generated from. */
const TRUTH: CostModel = {
  cores: CORES, usableCores: CORES, optimizerFixedMs: 0.01, optimizerPerParamMs: 4e-6, reducePerFloatMs: 3e-6, reduceSource: 'measured',
  contention: CONTENTION,
  computeCurve: {},
  transports: {
    inproc: transportTruth('inproc', false, {}),
    threads: transportTruth('threads', true, { computePerMacMs: 1.6e-6, wirePerMessageMs: 0.4, overheadMs: 0.08 }),
    ws: transportTruth('ws', true, {
      coordPerMessageMs: 0.05, coordPerByteMs: 2e-6, wirePerMessageMs: 0.7, wirePerByteMs: 8e-6,
      bytesFixed: 120, bytesPerParam: 8, bytesPerExample: 4, overheadMs: 0.1,
    }),
  },
};

/** What the profiler would have observed for one cell if TRUTH were the machine, with optional noise. */
function synthCell(transport: string, W: number, B: number, netIdx: number, noise: () => number): CellObservation {
  const t = TRUTH.transports[transport]!;
  const net = NETS[netIdx]!;
  const kappa = W > 1 ? CONTENTION[net.sizes.join('-') as keyof typeof CONTENTION] : 1;
  const sharing = t.concurrent ? Math.max(1, W / CORES) * kappa : 1;
  const ranks = Array.from({ length: W }, (_, r) => {
    const [a, b] = shardRange(B, r, W);
    const shard = b - a;
    const bytes = t.bytesFixed + t.bytesPerParam * net.params + t.bytesPerExample * shard;
    return {
      shard, bytes,
      computeMs: (t.computePerShardMs + t.computePerParamMs * net.params + t.computePerMacMs * net.macs * shard) * sharing * noise(),
      coordMs: (t.coordPerMessageMs + t.coordPerByteMs * bytes) * noise(),
      wireMs: (t.wirePerMessageMs + t.wirePerByteMs * bytes) * noise(),
    };
  });
  return {
    transport, workers: W, batch: B, net, concurrency: t.concurrent ? Math.min(W, CORES) * 0.9 : 1,
    stepMs: predictStep(TRUTH, { transport, workers: W, batch: B, net }).stepMs * noise(),
    fixedMs: 0.01, reduceMs: W > 1 ? TRUTH.reducePerFloatMs * W * net.params * noise() : 0,
    optimizerMs: (TRUTH.optimizerFixedMs + TRUTH.optimizerPerParamMs * net.params) * noise(),
    coordCpuMs: NaN, ranks, spread: SPREAD,
  };
}

function synthCells(noise: () => number): CellObservation[] {
  const cells: CellObservation[] = [];
  for (const netIdx of [0, 1]) for (const B of [10, 128, 1024]) {
    cells.push(synthCell('inproc', 1, B, netIdx, noise));
    for (const transport of ['threads', 'ws']) for (const W of [1, 2, 4]) cells.push(synthCell(transport, W, B, netIdx, noise));
  }
  return cells;
}

const FITTED_KEYS = ['computePerShardMs', 'computePerParamMs', 'computePerMacMs', 'coordPerMessageMs', 'coordPerByteMs',
  'wirePerMessageMs', 'wirePerByteMs', 'bytesFixed', 'bytesPerParam', 'bytesPerExample', 'overheadMs'] as const;

function expectClose(actual: number, expected: number, rel: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: fitted ${actual}, true ${expected}`).toBeLessThanOrEqual(rel * Math.abs(expected) + 1e-9);
}

describe('cost model', () => {
  it('recovers the parameters synthetic timings were generated from', () => {
    const model = fitCostModel(synthCells(() => 1), { cores: CORES, contention: CONTENTION });
    expectClose(model.optimizerPerParamMs, TRUTH.optimizerPerParamMs, 1e-6, 'optimizer per param');
    expectClose(model.optimizerFixedMs, TRUTH.optimizerFixedMs, 1e-6, 'optimizer fixed');
    expectClose(model.reducePerFloatMs, TRUTH.reducePerFloatMs, 1e-6, 'reduce per float');
    for (const name of ['inproc', 'threads', 'ws']) {
      const fit = model.transports[name]!;
      const truth = TRUTH.transports[name]!;
      // inproc ran with one worker only here: whether its ranks overlap was never observed
      expect(fit.concurrent).toBe(name === 'inproc' ? null : truth.concurrent);
      for (const k of FITTED_KEYS) expectClose(fit[k], truth[k], 1e-6, `${name}.${k}`);
    }
  });

  it('recovers them within 10% from timings with ±3% noise, and predicts unmeasured cells', () => {
    const rng = new Rng(42);
    const model = fitCostModel(synthCells(() => 1 + 0.03 * (2 * rng.nextFloat() - 1)), { cores: CORES, contention: CONTENTION });
    for (const k of ['computePerMacMs', 'wirePerMessageMs', 'wirePerByteMs', 'bytesPerParam'] as const) {
      expectClose(model.transports['ws']![k], TRUTH.transports['ws']![k], 0.1, `ws.${k}`);
    }
    // 8 workers at batch 512 of a net never measured
    const s = { transport: 'ws', workers: 8, batch: 512, net: netShape([784, 100, 10]) };
    expectClose(predictStep(model, s).stepMs, predictStep(TRUTH, s).stepMs, 0.05, 'unmeasured ws cell');
  });

  it('with a compute curve, takes the shape from it and fits one factor per transport', () => {
    // per example, 64-example shards cost more than 512-example ones: no line through 128 and 1024 says so
    const net = NETS[0]!;
    const curve = { 64: 0.3, 128: 0.53, 512: 1.7, 1024: 3.3 }; // as probed for 784-30-10 on this machine
    const factor = 1.25;
    const cell = (W: number, B: number): CellObservation => ({
      transport: 'threads', workers: W, batch: B, net, concurrency: W > 1 ? 1.8 : 1, stepMs: 0, fixedMs: 0.01, reduceMs: 0, optimizerMs: 0.01, coordCpuMs: NaN,
      ranks: Array.from({ length: W }, () => ({ shard: B / W, bytes: 0, computeMs: factor * curve[(B / W) as keyof typeof curve], coordMs: 0, wireMs: 0.1 })),
      spread: [1],
    });
    const cells = [cell(1, 128), cell(1, 1024)];
    for (const c of cells) c.stepMs = c.ranks[0]!.computeMs + 0.1 + 0.01;
    const model = fitCostModel(cells, { cores: CORES, computeCurve: { [net.sizes.join('-')]: curve } });
    expectClose(model.transports['threads']!.computeCurveScale!, factor, 1e-9, 'factor on the curve');
    expectClose(predictStep(model, { transport: 'threads', workers: 2, batch: 128, net }).computeMs, factor * 0.3, 1e-9, 'two 64-example shards at once');
    // between measured sizes: linear; outside them or for a net without a curve: the fitted line
    expect(curveAt(model, net, 320)).toBeCloseTo(0.53 + (1.7 - 0.53) * (320 - 128) / (512 - 128), 12);
    expect(curveAt(model, net, 2048)).toBeNull();
    expect(curveAt(model, NETS[1]!, 128)).toBeNull();
    const line = fitCostModel(cells, { cores: CORES });
    expect(line.transports['threads']!.computeCurveScale).toBeNull();
    // the line through 128 and 1024 calls the 64-example shard ~10% dearer than it is
    expect(predictStep(line, { transport: 'threads', workers: 2, batch: 128, net }).computeMs).toBeGreaterThan(factor * 0.3 * 1.05);
  });

  it('adds up the coordinator\'s measured share of each round trip over the ranks', () => {
    // as measured for ws at 784-256-256-10: a 2.5 ms round trip beyond the worker's compute, of
    // which 1.3 ms is the coordinator's own CPU on top of the 0.35 ms of encode/decode it times
    const net = NETS[1]!;
    const sigma = 1.3;
    const roundTrip = 2.5;
    const coord = 0.35;
    const cell = (B: number): CellObservation => {
      const computeMs = 0.019 * B;
      return {
        transport: 'ws', workers: 1, batch: B, net, concurrency: 1, stepMs: computeMs + coord + roundTrip + 0.12, fixedMs: 0, reduceMs: 0, optimizerMs: 0.12,
        coordCpuMs: coord + sigma, ranks: [{ shard: B, bytes: 2_154_832 + 4 * B, computeMs, coordMs: coord, wireMs: roundTrip }], spread: [1],
      };
    };
    const cells = [cell(128), cell(1024)];
    const model = fitCostModel(cells, { cores: CORES });
    const ws = model.transports['ws']!;
    expect(ws.serialPerMessageMs).not.toBeNull();
    const at = (W: number) => predictStep(model, { transport: 'ws', workers: W, batch: 1024, net });
    expectClose(at(1).communicationMs, coord + roundTrip, 1e-3, 'one rank: the round trip as measured');
    // two ranks: the coordinator's parts twice, the rest of the round trip once (it overlaps)
    expectClose(at(2).communicationMs, 2 * coord + roundTrip + sigma, 1e-3, 'two ranks');
    // not measured (a shared-memory transport, an old bench file): half of each byte's cost is the coordinator's
    const blind = fitCostModel(cells.map((c) => ({ ...c, coordCpuMs: NaN })), { cores: CORES });
    expect(blind.transports['ws']!.serialPerMessageMs).toBeNull();
  });

  it('says when worker processes and the coordinator outnumber the cores: that cost is not in the model', () => {
    const net = NETS[1]!;
    const cell = (B: number): CellObservation => ({
      transport: 'ws', workers: 1, batch: B, net, concurrency: 1, stepMs: 0.019 * B + 3, fixedMs: 0, reduceMs: 0, optimizerMs: 0.12,
      coordCpuMs: 1.65, ranks: [{ shard: B, bytes: 2_154_832 + 4 * B, computeMs: 0.019 * B, coordMs: 0.35, wireMs: 2.5 }], spread: [1],
    });
    const model = fitCostModel([cell(128), cell(1024)], { cores: CORES });
    const notes = (W: number, o: Partial<Scenario> = {}) => predictStep(model, { transport: 'ws', workers: W, batch: 1024, net, ...o }).assumptions.join('; ');
    expect(notes(1)).toBe('');
    expect(notes(2)).toContain('2 worker processes and the coordinator share 2 cores');
    // three cores hold them all; over a network every worker has a machine of its own
    expect(notes(2, { cores: 3 })).not.toContain('share');
    expect(notes(2, { network: { latencyMs: 0.5, bandwidthBitsPerS: 1e9 } })).not.toContain('share');
    // threads: the workers are the coordinator's own threads, no coordinator CPU apart from theirs
    const threads = fitCostModel([cell(128), cell(1024)].map((c) => ({ ...c, transport: 'threads', coordCpuMs: NaN })), { cores: CORES });
    expect(predictStep(threads, { transport: 'threads', workers: 2, batch: 1024, net }).assumptions.join('; ')).not.toContain('share');
  });

  it('caps parallelism at the core count: beyond 2 cores more workers only share them', () => {
    const net = NETS[1]!;
    const at = (W: number, cores?: number) => predictStep(TRUTH, { transport: 'threads', workers: W, batch: 4096, net, cores }).computeMs;
    expectClose(at(4), at(2), 0.01, '4 workers on 2 cores');
    expect(at(4, 4)).toBeLessThan(0.6 * at(2));
  });

  it('stretches the compute of concurrent ranks when another job leaves fewer usable cores', () => {
    const net = NETS[1]!;
    const unprobed = { ...TRUTH, contention: {} };
    const busy = { ...unprobed, usableCores: 1.6 };
    const at = (m: CostModel, W: number) => predictStep(m, { transport: 'threads', workers: W, batch: 1024, net }).computeMs;
    expectClose(at(busy, 2), at(unprobed, 2) * 2 / 1.6, 1e-9, '2 workers on 1.6 usable cores');
    expectClose(at(busy, 1), at(unprobed, 1), 1e-9, 'one worker is not stretched');
    // a contention probe ran while the other job was there: κ holds its share, not counted twice
    expectClose(at({ ...TRUTH, usableCores: 1.6 }, 2), at(TRUTH, 2), 1e-9, 'probed κ replaces the usable-core stretch');
  });

  it('stretches the compute of ranks running at once by the probed contention, not one rank alone', () => {
    const net = NETS[1]!;
    const plain = { ...TRUTH, contention: {} };
    const at = (m: CostModel, W: number) => predictStep(m, { transport: 'threads', workers: W, batch: 1024, net }).computeMs;
    expectClose(at(TRUTH, 2), at(plain, 2) * 1.15, 1e-9, 'two ranks at once');
    expectClose(at(TRUTH, 1), at(plain, 1), 1e-9, 'one rank');
    expect(predictStep(TRUTH, { transport: 'inproc', workers: 2, batch: 1024, net }).contention).toBe(1);
  });

  it('waits for the slowest of W ranks: the 0.5^(1/W) quantile of one rank\'s spread', () => {
    const net = NETS[0]!;
    const p = (W: number) => predictStep(TRUTH, { transport: 'ws', workers: W, batch: 128, net });
    const rankMs = (W: number) => p(W).computeMs + p(W).communicationMs - W * (TRUTH.transports.ws!.coordPerMessageMs
      + TRUTH.transports.ws!.coordPerByteMs * p(W).bytesPerRank);
    expect(p(1).waitMs).toBe(0);
    // SPREAD's quantile at 0.5^(1/2) = 0.7071 (index 2.83 of 0..4): 1 + 0.05 × 0.828
    expectClose(p(2).waitMs, (0.05 * (0.5 ** 0.5 * 4 - 2)) * rankMs(2), 1e-9, 'wait of 2 ranks');
    // at 0.5^(1/4) = 0.8409 (index 3.36): 1.05 + 0.25 × 0.364 − 1
    expectClose(p(4).waitMs, (0.05 + 0.25 * (0.5 ** 0.25 * 4 - 3)) * rankMs(4), 1e-9, 'wait of 4 ranks');
    expect(p(4).waitMs / rankMs(4)).toBeGreaterThan(p(2).waitMs / rankMs(2));
  });

  it('a model fitted on one-worker cells predicts the two-worker speedups of its own generator', () => {
    const v = validateOnOneWorker(synthCells(() => 1), CORES, TRUTH.reducePerFloatMs, undefined, CONTENTION)!;
    expect(v.rows.length).toBeGreaterThan(0);
    for (const r of v.rows) expect(Math.abs(r.error)).toBeLessThan(1e-6);
  });

  it('names the communication budget and the batch at which workers pay off', () => {
    const cells = synthCells(() => 1);
    const be = breakEven(TRUTH, cells, 'ws', 2, 10, NETS[0]!, 65536, null);
    // at batch 10 the small net cannot pay for a 0.7 ms round trip
    expect(be.communicationMs).toBeGreaterThan(be.budgetMs);
    expect(be.payingBatch).not.toBeNull();
    const at = (b: number) => predictStep(TRUTH, { transport: 'ws', workers: 2, batch: b, net: NETS[0]! }).stepMs
      / predictStep(TRUTH, { transport: 'inproc', workers: 1, batch: b, net: NETS[0]! }).stepMs;
    expect(at(be.payingBatch!)).toBeLessThan(1);
    expect(at(be.payingBatch! / 2)).toBeGreaterThanOrEqual(1);
  });

  it('nnls drops a column the data cannot tell apart from another and keeps costs non-negative', () => {
    const X = [[1, 5, 1], [1, 5, 2], [1, 5, 3]];
    const fit = nnls(X, [3, 5, 7]);
    expect(fit.coef[0]! + 5 * fit.coef[1]!).toBeCloseTo(1, 9);
    expect(fit.coef[2]).toBeCloseTo(2, 9);
    expect(fit.coef.every((c) => c >= 0)).toBe(true);
    expect(nnls([[1, 1], [1, 2]], [5, 3]).coef[1]).toBe(0);
  });
});

describe('--what-if', () => {
  it('parses latency, bandwidth and workers with units', () => {
    const w = parseWhatIf('latency=500us,bandwidth=1Gbit,workers=8');
    expect(w.latencyMs).toBeCloseTo(0.5, 12);
    expect(w.bandwidthBitsPerS).toBe(1e9);
    expect(w.workers).toEqual([8]);
    expect(parseWhatIf('bandwidth=125MB/s,latency=1ms,workers=2/4,cores=8').bandwidthBitsPerS).toBe(1e9);
  });
  it('rejects unknown keys, missing units and a latency without bandwidth, naming the fix', () => {
    expect(() => parseWhatIf('latency=500')).toThrow(/latency needs a unit/);
    expect(() => parseWhatIf('speed=1Gbit')).toThrow(/unknown key 'speed'/);
    expect(() => parseWhatIf('latency=1ms')).toThrow(/needs a bandwidth/);
    expect(() => parseWhatIf('workers=0')).toThrow(/positive integer/);
  });
});
