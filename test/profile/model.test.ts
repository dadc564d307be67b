import { describe, expect, it } from 'vitest';
import { nnls } from '../../src/profile/least-squares.js';
import { fitCostModel, lockstepMs, predictStep, type CostModel, type LockstepTable, type Scenario, type TransportModel } from '../../src/profile/model.js';
import { netShape, type CellObservation, type NetShape } from '../../src/profile/observe.js';
import { breakEven, validateOnOneWorker } from '../../src/profile/analysis.js';
import { parseWhatIf } from '../../src/profile/what-if.js';
import { Rng } from '../../src/tensor/rng.js';

const CORES = 2;
const SMALL = netShape([784, 30, 10]); // P = 23,860
const LARGE = netShape([784, 256, 256, 10]);

/** The lockstep probe as if measured: ms per step by ranks at once, then shard size (784-30-10 as probed on a 2-core VM). */
const LOCKSTEP: Record<string, LockstepTable> = {
  '784-30-10': { 1: { 32: 0.17, 64: 0.3, 128: 0.53, 256: 0.9, 512: 1.7, 1024: 3.3 }, 2: { 32: 0.2, 64: 0.33, 256: 0.95, 512: 1.85 } },
  '784-256-256-10': { 1: { 32: 0.8, 64: 1.4, 128: 2.6, 256: 4.9, 512: 9.5, 1024: 18 }, 2: { 32: 0.9, 64: 1.6, 256: 5.6, 512: 11 } },
};

/** The machine the synthetic cells come from, term by term (names as in docs/profiling.md). */
interface Truth {
  concurrent: boolean;
  f: number; e0: number; eb: number; l0: number; lb: number;
  /** σ = s0 + sb·bytes; null: not measured */
  s0: number | null; sb: number;
  b0: number; bP: number; bn: number;
  F: number;
}
const NONE = { e0: 0, eb: 0, l0: 0, lb: 0, s0: null, sb: 0, b0: 0, bP: 0, bn: 0 };
const TRUTHS: Record<string, Truth> = {
  inproc: { ...NONE, concurrent: false, f: 1, F: 0.03 },
  threads: { ...NONE, concurrent: true, f: 1.1, l0: 0.4, F: 0.08 },
  ws: { concurrent: true, f: 0.9, e0: 0.05, eb: 2e-6, l0: 0.7, lb: 8e-6, s0: 0.3, sb: 1e-6, b0: 120, bP: 8, bn: 4, F: 0.1 },
};
const U0 = 0.01;
const U = 4e-6;
const RHO = 3e-6;

/**
 * The step formula once more, written out apart from model.ts: the generator of the synthetic
 * cells and the reference every prediction is checked against. B is a multiple of W here.
 */
function referenceStep(transport: string, W: number, B: number, net: NetShape): number {
  const t = TRUTHS[transport]!;
  const n = B / W;
  const P = net.params;
  const bytes = t.b0 + t.bP * P + t.bn * n;
  const L = LOCKSTEP[net.sizes.join('-')]!;
  const compute = t.concurrent ? t.f * L[Math.min(W, CORES)]![n]! * Math.max(1, W / CORES) : t.f * W * L[1]![n]!;
  const roundTrip = t.l0 + t.lb * bytes;
  const sigma = t.s0 === null ? 0 : Math.min(roundTrip, t.s0 + t.sb * bytes);
  const wire = t.concurrent ? roundTrip + (W - 1) * sigma : W * roundTrip;
  const coord = W * (t.e0 + t.eb * bytes);
  const update = U0 + U * P + (W > 1 ? RHO * W * P : 0);
  return t.F + compute + coord + wire + update;
}

/** What the profiler would have observed for one cell of that machine, each figure times noise(). */
function synthCell(transport: string, W: number, B: number, net: NetShape, noise: () => number): CellObservation {
  const t = TRUTHS[transport]!;
  const n = B / W;
  const bytes = t.b0 + t.bP * net.params + t.bn * n;
  const L = LOCKSTEP[net.sizes.join('-')]!;
  const rankCompute = t.concurrent ? t.f * L[Math.min(W, CORES)]![n]! * Math.max(1, W / CORES) : t.f * L[1]![n]!;
  const coordMs = t.e0 + t.eb * bytes;
  const sigma = t.s0 === null ? NaN : t.s0 + t.sb * bytes;
  return {
    transport, workers: W, batch: B, net, concurrency: t.concurrent && W > 1 ? Math.min(W, CORES) * 0.9 : 1,
    stepMs: referenceStep(transport, W, B, net) * noise(),
    reduceMs: W > 1 ? RHO * W * net.params * noise() : 0, optimizerMs: (U0 + U * net.params) * noise(),
    coordCpuMs: W * (sigma + coordMs) * noise(),
    ranks: Array.from({ length: W }, () => ({ shard: n, bytes, computeMs: rankCompute * noise(), coordMs: coordMs * noise(), handoffMs: (t.l0 + t.lb * bytes) * noise() })),
  };
}

function synthCells(noise: () => number): CellObservation[] {
  const cells: CellObservation[] = [];
  for (const net of [SMALL, LARGE]) for (const B of [128, 1024]) {
    for (const W of [1, 2]) cells.push(synthCell('inproc', W, B, net, noise));
    for (const transport of ['threads', 'ws']) for (const W of [1, 2, 4]) cells.push(synthCell(transport, W, B, net, noise));
  }
  return cells;
}

/** TRUTHS as a CostModel, to predict from without fitting. */
function truthModel(): CostModel {
  const tm = (transport: string, t: Truth): TransportModel => ({
    transport, concurrent: t.concurrent, computeFactor: t.f, coordPerRankMs: t.e0, coordPerByteMs: t.eb,
    serialPerRankMs: t.s0, serialPerByteMs: t.sb, handoffPerRankMs: t.l0, handoffPerByteMs: t.lb,
    bytesFixed: t.b0, bytesPerParam: t.bP, bytesPerExample: t.bn, overheadMs: t.F, cells: 0, rmsMs: 0,
  });
  return {
    cores: CORES, optimizerFixedMs: U0, optimizerPerParamMs: U, reducePerFloatMs: RHO, reduceSource: 'measured', lockstep: LOCKSTEP,
    transports: Object.fromEntries(Object.entries(TRUTHS).map(([name, t]) => [name, tm(name, t)])),
  };
}

function expectClose(actual: number, expected: number, rel: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: got ${actual}, expected ${expected}`).toBeLessThanOrEqual(rel * Math.abs(expected) + 1e-9);
}

describe('cost model: the step formula', () => {
  const model = truthModel();
  const at = (s: Scenario) => predictStep(model, s);

  it('adds up ws x2 from its terms: compute at two ranks at once, each rank\'s encode/decode, one round trip plus σ, reduce', () => {
    // shard 64; bytes = 120 + 8·23,860 + 4·64 = 191,256
    // compute = 0.9 · L(2, 64) = 0.9 · 0.33 = 0.297
    // coord   = 2 · (0.05 + 2e-6 · 191,256) = 0.865024
    // wire    = (0.7 + 8e-6 · 191,256) + 1 · (0.3 + 1e-6 · 191,256) = 2.230048 + 0.491256 = 2.721304
    // update  = 0.01 + 4e-6 · 23,860 + 3e-6 · 2 · 23,860 = 0.2486;  F = 0.1
    const p = at({ transport: 'ws', workers: 2, batch: 128, net: SMALL });
    expect(p.bytesPerRank).toBe(191_256);
    expect(p.computeMs).toBeCloseTo(0.297, 12);
    expect(p.communicationMs).toBeCloseTo(0.865024 + 2.721304, 12);
    expect(p.updateMs).toBeCloseTo(0.2486, 12);
    expect(p.stepMs).toBeCloseTo(4.231928, 12);
  });

  it('adds up ranks that take turns: each shard computed alone, one after another', () => {
    // inproc x2 at 1024: 1 · 2 · L(1, 512) = 3.4; no bytes; update 0.2486; F 0.03
    const p = at({ transport: 'inproc', workers: 2, batch: 1024, net: SMALL });
    expect(p.computeMs).toBeCloseTo(3.4, 12);
    expect(p.ranksAtOnce).toBe(1);
    expect(p.stepMs).toBeCloseTo(3.6786, 12);
  });

  it('on emulated hosts of their own, ws ranks compute alone however many there are, and share no cores', () => {
    // ws x4 at 1024 on 2 cores: 0.9 · L(1, 256) = 0.81, not 0.9 · L(2, 256) · 4/2 = 1.71
    const own = predictStep({ ...model, hostPerWorker: ['ws'] }, { transport: 'ws', workers: 4, batch: 1024, net: SMALL });
    expect(own.computeMs).toBeCloseTo(0.81, 12);
    expect(own.ranksAtOnce).toBe(1);
    expect(own.cpuSharing).toBe(1);
    expect(own.assumptions.join()).not.toMatch(/share 2 cores/);
    // threads stay on the coordinator's host: its cores are shared as before
    expect(predictStep({ ...model, hostPerWorker: ['ws'] }, { transport: 'threads', workers: 4, batch: 1024, net: SMALL }).computeMs).toBeCloseTo(2.09, 12);
    expect(at({ transport: 'ws', workers: 4, batch: 1024, net: SMALL }).computeMs).toBeCloseTo(1.71, 12);
  });

  it('beyond the core count, ranks take turns on the cores: 4 threads on 2 cores', () => {
    // compute = 1.1 · L(2, 256) · 4/2 = 2.09; wire 0.4 (no σ: nothing adds up over the ranks);
    // update = 0.01 + 0.09544 + 3e-6 · 4 · 23,860 = 0.39176; F 0.08
    const p = at({ transport: 'threads', workers: 4, batch: 1024, net: SMALL });
    expect(p.computeMs).toBeCloseTo(2.09, 12);
    expect(p.cpuSharing).toBe(2);
    expect(p.ranksAtOnce).toBe(2);
    expect(p.stepMs).toBeCloseTo(2.96176, 12);
    // on 4 cores the same ranks do not take turns: the most this machine measured at once, 2
    expect(at({ transport: 'threads', workers: 4, batch: 1024, net: SMALL, cores: 4 }).computeMs).toBeCloseTo(1.1 * 0.95, 12);
  });

  it('over a what-if network, each worker computes alone on its machine and the link adds latency and W·bytes/bandwidth', () => {
    // ws x8, batch 1024, 8 cores: shard 128, compute = 0.9 · L(1, 128) = 0.477
    // bytes = 120 + 190,880 + 512 = 191,512; coord = 8 · (0.05 + 0.383024) = 3.464192
    // wire = 2.232096 + 7 · 0.491512 + 2 · 0.5 + 8 · 191,512 · 8 / 1e9 · 1000 = 18.929448
    // update = 0.01 + 0.09544 + 3e-6 · 8 · 23,860 = 0.67808; F 0.1
    const p = at({ transport: 'ws', workers: 8, batch: 1024, net: SMALL, cores: 8, network: { latencyMs: 0.5, bandwidthBitsPerS: 1e9 } });
    expect(p.computeMs).toBeCloseTo(0.477, 12);
    expect(p.ranksAtOnce).toBe(1);
    expect(p.stepMs).toBeCloseTo(23.64872, 12);
  });

  it('reads the lockstep probe linearly between probed sizes and along the nearest two beyond them', () => {
    expect(lockstepMs(model, SMALL, 1, 96)).toBeCloseTo(0.3 + (0.53 - 0.3) * 32 / 64, 12);
    expect(lockstepMs(model, SMALL, 2, 16)).toBeCloseTo(0.2 - (0.33 - 0.2) * 16 / 32, 12);
    expect(lockstepMs(model, SMALL, 1, 2048)).toBeCloseTo(3.3 + (3.3 - 1.7) * 1024 / 512, 12);
    expect(lockstepMs({ lockstep: { '784-30-10': { 1: { 100: 0.4 } } } }, SMALL, 1, 50)).toBeCloseTo(0.2, 12);
    expect(() => lockstepMs(model, netShape([784, 100, 10]), 1, 64)).toThrow(/no lockstep probe of 784-100-10 with 1 rank\(s\) at once: dpt bench probes/);
  });

  it('says when worker processes and the coordinator outnumber the cores: that cost is not in the model', () => {
    const notes = (W: number, o: Partial<Scenario> = {}) => at({ transport: 'ws', workers: W, batch: 1024, net: LARGE, ...o }).assumptions.join('; ');
    expect(notes(1)).toBe('');
    expect(notes(2)).toContain('2 worker processes and the coordinator share 2 cores');
    // three cores hold them all; over a network every worker has a machine of its own
    expect(notes(2, { cores: 3 })).not.toContain('share');
    expect(notes(2, { network: { latencyMs: 0.5, bandwidthBitsPerS: 1e9 } })).not.toContain('share');
    // threads: no σ, the workers are the coordinator's own threads
    expect(at({ transport: 'threads', workers: 2, batch: 1024, net: LARGE }).assumptions.join('; ')).not.toContain('share');
  });
});

describe('cost model: the fit', () => {
  it('recovers every coefficient synthetic timings were generated from', () => {
    const model = fitCostModel(synthCells(() => 1), { cores: CORES, lockstep: LOCKSTEP });
    expectClose(model.optimizerFixedMs, U0, 1e-6, 'u0');
    expectClose(model.optimizerPerParamMs, U, 1e-6, 'u');
    expectClose(model.reducePerFloatMs, RHO, 1e-6, 'ρ');
    for (const [name, t] of Object.entries(TRUTHS)) {
      const fit = model.transports[name]!;
      expect(fit.concurrent, name).toBe(t.concurrent);
      const pairs: [keyof TransportModel, number][] = [['computeFactor', t.f], ['coordPerRankMs', t.e0], ['coordPerByteMs', t.eb],
        ['handoffPerRankMs', t.l0], ['handoffPerByteMs', t.lb], ['bytesFixed', t.b0], ['bytesPerParam', t.bP], ['bytesPerExample', t.bn], ['overheadMs', t.F]];
      for (const [k, v] of pairs) expectClose(fit[k] as number, v, 1e-6, `${name}.${k}`);
      expect(fit.serialPerRankMs === null, `${name}: σ measured`).toBe(t.s0 === null);
      if (t.s0 !== null) {
        expectClose(fit.serialPerRankMs!, t.s0, 1e-6, `${name}.s0`);
        expectClose(fit.serialPerByteMs, t.sb, 1e-6, `${name}.sb`);
      }
    }
  });

  it('fitted on the one-worker cells only, predicts every multi-worker cell of its generator', () => {
    const cells = synthCells(() => 1);
    const v = validateOnOneWorker(cells, { cores: CORES, lockstep: LOCKSTEP, reducePerFloatMs: RHO })!;
    expect(v.rows.map((r) => `${r.cell.transport}x${r.cell.workers}`)).toContain('wsx4');
    expect(v.rows).toHaveLength(cells.filter((c) => c.workers > 1).length);
    for (const r of v.rows) {
      expectClose(predictStep(v.model, { transport: r.cell.transport, workers: r.cell.workers, batch: r.cell.batch, net: r.cell.net }).stepMs,
        referenceStep(r.cell.transport, r.cell.workers, r.cell.batch, r.cell.net), 1e-6, `${r.cell.transport} x${r.cell.workers} @ ${r.cell.batch}`);
      expect(Math.abs(r.error)).toBeLessThan(1e-6);
    }
  });

  it('recovers them within 10% from timings with ±3% noise, and predicts a cell it never saw within 5%', () => {
    const rng = new Rng(42);
    const model = fitCostModel(synthCells(() => 1 + 0.03 * (2 * rng.nextFloat() - 1)), { cores: CORES, lockstep: LOCKSTEP });
    const ws = model.transports['ws']!;
    expectClose(ws.computeFactor, 0.9, 0.1, 'ws f');
    expectClose(ws.handoffPerRankMs, 0.7, 0.1, 'ws l0');
    expectClose(ws.handoffPerByteMs, 8e-6, 0.1, 'ws lb');
    expectClose(ws.bytesPerParam, 8, 0.1, 'ws bP');
    // 8 workers at batch 512: shards of 64, two at a time on 2 cores
    expectClose(predictStep(model, { transport: 'ws', workers: 8, batch: 512, net: LARGE }).stepMs, referenceStep('ws', 8, 512, LARGE), 0.05, 'ws x8 @ 512');
  });

  it('names the communication budget and the batch from which workers pay off', () => {
    const model = truthModel();
    const cells = synthCells(() => 1);
    const be = breakEven(model, cells, 'ws', 2, 128, SMALL, 65536, null);
    // one node: 0.03 + 0.53 + 0.10544 = 0.66544; ws x2 without its communication: 0.1 + 0.297 + 0.2486 = 0.6456
    expect(be.baselineMs).toBeCloseTo(0.66544, 12);
    expect(be.budgetMs).toBeCloseTo(0.66544 - 0.6456, 12);
    expect(be.communicationMs).toBeCloseTo(3.586328, 12);
    // where it pays: the predicted speedup crosses 1 between the paying batch and half of it
    const ratio = (b: number) => predictStep(model, { transport: 'ws', workers: 2, batch: b, net: SMALL }).stepMs / predictStep(model, { transport: 'inproc', workers: 1, batch: b, net: SMALL }).stepMs;
    expect(be.payingBatch).not.toBeNull();
    expect(ratio(be.payingBatch!)).toBeLessThan(1);
    expect(ratio(be.payingBatch! / 2)).toBeGreaterThanOrEqual(1);
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
