import { describe, expect, it } from 'vitest';
import { nnls } from '../../src/profile/least-squares.js';
import { fitCostModel, lockstepMs, predictStep, type CostModel, type LockstepTable, type Scenario, type TransportModel } from '../../src/profile/model.js';
import { netShape, observeCell, type CellObservation, type NetShape } from '../../src/profile/observe.js';
import type { StepRecord } from '../../src/profile/profiler.js';
import { breakEven, validateOnOneWorker, whatIf } from '../../src/profile/analysis.js';
import { whatIfLines, whatIfSettings } from '../../src/profile/bench-tables.js';
import type { BenchPlan } from '../../src/profile/bench-facts.js';
import { checkWhatIfWire, parseWhatIf } from '../../src/profile/what-if.js';
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
    transport, workers: W, batch: B, net, stepsPerRecord: 1, concurrency: t.concurrent && W > 1 ? Math.min(W, CORES) * 0.9 : 1,
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
    // ws as a coordinator that only averages (--average-only): every rank a worker process
    cores: CORES, optimizerFixedMs: U0, optimizerPerParamMs: U, reducePerFloatMs: RHO, reduceSource: 'measured', lockstep: LOCKSTEP, averageOnly: true,
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

  it('over a what-if network, each worker computes alone on its machine and the link adds latency and W·bytes/bandwidth, less the round trip\'s own per-byte part it overlaps', () => {
    // ws x8, batch 1024, 8 cores: shard 128, compute = 0.9 · L(1, 128) = 0.477
    // bytes = 120 + 190,880 + 512 = 191,512; coord = 8 · (0.05 + 0.383024) = 3.464192
    // wire = 2.232096 + 7 · 0.491512 + 2 · 0.5 + (8 · 191,512 · 8 / 1e9 · 1000 − 8e-6 · 191,512) = 17.397352
    // update = 0.01 + 0.09544 + 3e-6 · 8 · 23,860 = 0.67808; F 0.1
    const p = at({ transport: 'ws', workers: 8, batch: 1024, net: SMALL, cores: 8, network: { latencyMs: 0.5, bandwidthBitsPerS: 1e9 } });
    expect(p.computeMs).toBeCloseTo(0.477, 12);
    expect(p.ranksAtOnce).toBe(1);
    expect(p.stepMs).toBeCloseTo(22.116624, 12);
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

describe('cost model: local SGD (average-every) and the wire format', () => {
  const model = truthModel();
  const at = (s: Scenario) => predictStep(model, s);
  const NET = { latencyMs: 0.5, bandwidthBitsPerS: 1e9 };

  it('average-every=1 and an fp32 wire are the measured setting, bit for bit (momentum or not)', () => {
    const scenarios: Scenario[] = [
      { transport: 'ws', workers: 2, batch: 128, net: SMALL },
      { transport: 'ws', workers: 8, batch: 1024, net: SMALL, cores: 8, network: NET },
      { transport: 'threads', workers: 4, batch: 1024, net: LARGE, network: NET },
      { transport: 'inproc', workers: 2, batch: 1024, net: SMALL },
    ];
    for (const s of scenarios) {
      const today = at(s);
      for (const same of [at({ ...s, averageEvery: 1, wireElementBytes: 4 }), at({ ...s, averageEvery: 1, wireElementBytes: 4, velocity: true })]) {
        expect(same).toEqual(today);
        for (const k of ['stepMs', 'computeMs', 'communicationMs', 'updateMs', 'bytesPerRank'] as const) expect(Object.is(same[k], today[k]), k).toBe(true);
        expect(same.localUpdateMs).toBe(0);
      }
    }
  });

  it('average-every=16 divides the exchange and the coordinator\'s reduce and step by 16 and adds each rank\'s own update every step', () => {
    // ws x2 at 128, as in 'adds up ws x2': coord 0.865024 + wire 2.721304 = 3.586328 → ÷ 16 = 0.2241455
    // update: (0.01 + 0.09544 + 0.14316) ÷ 16 = 0.0155375, + the rank's own step 0.01 + 0.09544 = 0.10544
    // step = 0.1 + 0.297 + 0.2241455 + 0.1209775 = 0.742123; bytes 191,256 ÷ 16 = 11,953.5
    const p = at({ transport: 'ws', workers: 2, batch: 128, net: SMALL, averageEvery: 16 });
    expect(p.computeMs).toBeCloseTo(0.297, 12);
    expect(p.communicationMs).toBeCloseTo(0.2241455, 12);
    expect(p.localUpdateMs).toBeCloseTo(0.10544, 12);
    expect(p.updateMs).toBeCloseTo(0.1209775, 12);
    expect(p.bytesPerRank).toBeCloseTo(11_953.5, 9);
    expect(p.stepMs).toBeCloseTo(0.742123, 12);
    expect(p.assumptions.join('; ')).toContain('local update priced as the measured optimizer step');
  });

  it('spreads the ranks\' local updates over the cores like their compute: taking turns, or W / cores', () => {
    // one optimizer step 0.10544; inproc ranks take turns: 4 of them; 4 threads on 2 cores: 2 at a time
    expect(at({ transport: 'inproc', workers: 4, batch: 1024, net: SMALL, averageEvery: 4 }).localUpdateMs).toBeCloseTo(4 * 0.10544, 12);
    expect(at({ transport: 'threads', workers: 4, batch: 1024, net: SMALL, averageEvery: 4 }).localUpdateMs).toBeCloseTo(2 * 0.10544, 12);
  });

  it('bf16 halves the parameter and gradient bytes on the wire, and keeps the encode/decode per element', () => {
    // bytes = 120 + 8 · 23,860 / 2 + 4 · 64 = 95,816; coord as fp32: 0.865024
    // wire = (0.7 + 8e-6 · 95,816) + (0.3 + 1e-6 · 95,816) = 1.466528 + 0.395816 = 1.862344
    // step = 0.1 + 0.297 + 0.865024 + 1.862344 + 0.2486 = 3.372968
    const p = at({ transport: 'ws', workers: 2, batch: 128, net: SMALL, wireElementBytes: 2 });
    expect(p.bytesPerRank).toBe(95_816);
    expect(p.communicationMs).toBeCloseTo(0.865024 + 1.862344, 12);
    expect(p.stepMs).toBeCloseTo(3.372968, 12);
    expect(p.assumptions.join('; ')).toContain('16-bit conversion priced as fp32 encode/decode per element');
  });

  it('bf16 over a network halves what the link carries of the tensors', () => {
    // ws x8 at 1024 on 8 cores, as in 'over a what-if network', with bytes = 120 + 95,440 + 512 = 96,072
    // wire = (0.7 + 0.768576) + 7 · (0.3 + 0.096072) + 2 · 0.5 + (8 · 96,072 · 8 / 1e6 − 0.768576) = 1.468576 + 2.772504 + 1 + 5.380032
    // step = 0.1 + 0.477 + (10.621112 + coord 3.464192) + 0.67808 = 15.340384
    const p = at({ transport: 'ws', workers: 8, batch: 1024, net: SMALL, cores: 8, network: NET, wireElementBytes: 2 });
    expect(p.bytesPerRank).toBe(96_072);
    expect(p.stepMs).toBeCloseTo(15.340384, 12);
  });

  it('with momentum, local SGD sends each rank\'s fp32 velocity both ways and the coordinator averages it too', () => {
    // the example of --help: average-every=16, bf16, over 1 Gbit/s (0.5 ms), ws x8 at 1024 on 8 cores
    // bytes = 96,072 + 8 · 23,860 = 286,952 on the wire; 191,512 + 190,880 = 382,392 encoded as fp32
    // coord = 8 · (0.05 + 2e-6 · 382,392) = 6.518272
    // wire = (0.7 + 2.295616) + 7 · (0.3 + 0.286952) + 1 + (8 · 286,952 · 8 / 1e6 − 2.295616) = 2.995616 + 4.108664 + 1 + 16.069312 = 24.173592
    // comm = (24.173592 + 6.518272) ÷ 16 = 1.9182415
    // update = (2 · 0.10544 + 2 · 3e-6 · 8 · 23,860) ÷ 16 + 0.10544 = 1.35616 ÷ 16 + 0.10544 = 0.1902
    // step = 0.1 + 0.477 + 1.9182415 + 0.1902 = 2.6854415
    const p = at({ transport: 'ws', workers: 8, batch: 1024, net: SMALL, cores: 8, network: NET, wireElementBytes: 2, averageEvery: 16, velocity: true });
    expect(p.bytesPerRank).toBeCloseTo(286_952 / 16, 9);
    expect(p.communicationMs).toBeCloseTo(1.9182415, 12);
    expect(p.updateMs).toBeCloseTo(0.1902, 12);
    expect(p.stepMs).toBeCloseTo(2.6854415, 12);
  });
});

describe('what-if rows: per step, per epoch and to the target', () => {
  const model = truthModel();
  const cells = synthCells(() => 1);
  const ctx = { trainCount: 50_000, momentum: false };

  it('say which K and wire each row assumes, and keep only transports with a wire when wire= has no network', () => {
    const rows = whatIf(model, cells, parseWhatIf('average-every=16,wire=bf16,workers=4,batch=1024'), ctx);
    expect(rows.map((r) => `${r.transport} x${r.workers} ${r.averageEvery} ${r.wire}`)).toEqual(['ws x4 16 bf16', 'ws x4 16 bf16']);
    expect(rows[0]!.prediction.stepMs).toBe(predictStep(model, { transport: 'ws', workers: 4, batch: 1024, net: SMALL, cores: CORES, network: null, averageEvery: 16, wireElementBytes: 2, velocity: false }).stepMs);
    // without wire=, threads stays, with nothing on a wire
    const plain = whatIf(model, cells, parseWhatIf('average-every=16,workers=4,batch=1024,sizes=784-30-10'), { ...ctx, momentum: true });
    expect(plain.map((r) => `${r.transport} ${r.wire}`)).toEqual(['inproc null', 'threads null', 'ws fp32']);
    // the run's momentum makes the velocity travel
    expect(plain[2]!.prediction.bytesPerRank).toBeCloseTo((120 + 8 * 23_860 + 4 * 256 + 8 * 23_860) / 16, 9);
    // and the line above the table says all of it
    expect(whatIfSettings(parseWhatIf('average-every=16,wire=bf16'), rows, 0)).toBe('average-every=16 (local SGD: one exchange per 16 steps) and wire=bf16');
    expect(whatIfSettings(parseWhatIf('average-every=16'), plain, 0.9)).toBe('average-every=16 (local SGD: one exchange per 16 steps, each rank\'s momentum velocity travelling with it in fp32) ' +
      'and wire=fp32 (as measured) on ws (the others move nothing over a wire)');
    expect(whatIfSettings(parseWhatIf('workers=2'), plain.slice(0, 2), 0)).toBe('average-every=1 (an exchange every step, as measured), nothing on a wire (shared memory)');
  });

  it('predict samples/s and the epoch from the step: ⌈50,000 / batch⌉ steps', () => {
    const [r] = whatIf(model, cells, parseWhatIf('transport=ws,workers=2,batch=128,sizes=784-30-10,average-every=16'), ctx);
    // the step of 'average-every=16 divides the exchange…': 0.742123 ms; 391 steps an epoch
    expect(r!.prediction.stepMs).toBeCloseTo(0.742123, 12);
    expect(r!.samplesPerSecond).toBeCloseTo(128 / 0.742123e-3, 6);
    expect(r!.epochSeconds).toBeCloseTo(391 * 0.742123e-3, 12);
    expect(r!.timeToAccuracy).toBeNull();
  });

  it('with --target-accuracy, multiply the measured epochs to the target by the predicted epoch time, and say so', () => {
    const epochsToTarget = (_: NetShape, batch: number) => (batch === 128 ? { target: 0.95, epochs: 24.5 } : null);
    const rows = whatIf(model, cells, parseWhatIf('transport=ws,workers=2,batch=128/256,sizes=784-30-10,average-every=16'), { ...ctx, epochsToTarget });
    expect(rows[0]!.timeToAccuracy).toEqual({ target: 0.95, epochs: 24.5, seconds: 24.5 * rows[0]!.epochSeconds });
    expect(rows[1]!.timeToAccuracy).toBeNull();
    const plan = { targetAccuracy: 0.95, momentum: 0 } as BenchPlan;
    const lines = whatIfLines({ whatIf: rows, whatIfSpec: parseWhatIf('average-every=16'), plan });
    expect(lines[0]).toContain('predicted by the model with average-every=16 (local SGD: one exchange per 16 steps) and wire=fp32 (as measured);');
    expect(lines[1]).toMatch(/ epoch +to 95\.0% +one node /);
    const note = lines.at(-1)!;
    expect(note).toMatch(/^to 95\.0%: measured epochs to 95\.0% × predicted epoch time /);
    expect(note).toContain('with local SGD (average-every=16) the optimisation differs, and the epochs may too');
    expect(note).toContain('–: no seed reached 95.0% at that batch, or it was not run');
  });
});

describe('cost model: the fit', () => {
  it('recovers every coefficient synthetic timings were generated from', () => {
    const model = fitCostModel(synthCells(() => 1), { cores: CORES, lockstep: LOCKSTEP, averageOnly: true });
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
    const v = validateOnOneWorker(cells, { cores: CORES, lockstep: LOCKSTEP, reducePerFloatMs: RHO, averageOnly: true })!;
    expect(v.rows.map((r) => `${r.cell.transport}x${r.cell.workers}`)).toContain('wsx4');
    expect(v.rows).toHaveLength(cells.filter((c) => c.workers > 1).length);
    for (const r of v.rows) {
      expectClose(predictStep(v.model, { transport: r.cell.transport, workers: r.cell.workers, batch: r.cell.batch, net: r.cell.net }).stepMs,
        referenceStep(r.cell.transport, r.cell.workers, r.cell.batch, r.cell.net), 1e-6, `${r.cell.transport} x${r.cell.workers} @ ${r.cell.batch}`);
      expect(Math.abs(r.error)).toBeLessThan(1e-6);
    }
  });

  it('fits the exchange terms on the ranks that crossed the wire: a ws rank 0 the coordinator computed (0 bytes) leaves them as they are', () => {
    const cells = synthCells(() => 1);
    const withRank0 = cells.map((c) => (c.transport === 'ws' && c.workers > 1
      ? { ...c, ranks: [{ shard: c.ranks[0]!.shard, computeMs: c.ranks[0]!.computeMs, coordMs: 0, handoffMs: 0, bytes: 0 }, ...c.ranks.slice(1)] }
      : c));
    const plain = fitCostModel(cells, { cores: CORES, lockstep: LOCKSTEP, averageOnly: true }).transports['ws']!;
    const fit = fitCostModel(withRank0, { cores: CORES, lockstep: LOCKSTEP, averageOnly: true }).transports['ws']!;
    for (const k of ['coordPerRankMs', 'coordPerByteMs', 'handoffPerRankMs', 'handoffPerByteMs', 'bytesFixed', 'bytesPerParam', 'bytesPerExample'] as const) {
      expectClose(fit[k], plain[k], 1e-6, k);
    }
  });

  it('checks each cell against the measured single-node step, not the model\'s own prediction of it', () => {
    // the baselines measured 30% slower than the generator makes them: a model fitted on them cannot
    // match both those and the other one-worker cells, and its error on the baseline must not
    // scale the multi-worker predictions
    const cells = synthCells(() => 1).map((c) => (c.transport === 'inproc' && c.workers === 1 ? { ...c, stepMs: c.stepMs * 1.3 } : c));
    const v = validateOnOneWorker(cells, { cores: CORES, lockstep: LOCKSTEP, reducePerFloatMs: RHO, averageOnly: true })!;
    for (const r of v.rows) {
      const base = cells.find((c) => c.transport === 'inproc' && c.workers === 1 && c.batch === r.cell.batch && c.net.params === r.cell.net.params)!;
      const predicted = predictStep(v.model, { transport: r.cell.transport, workers: r.cell.workers, batch: r.cell.batch, net: r.cell.net }).stepMs;
      expectClose(r.predictedMs, predicted, 1e-9, 'predicted step');
      expectClose(r.predictedSpeedup, base.stepMs / predicted, 1e-9, 'predicted speedup');
      expectClose(r.measuredSpeedup, base.stepMs / r.cell.stepMs, 1e-9, 'measured speedup');
    }
  });

  it('recovers them within 10% from timings with ±3% noise, and predicts a cell it never saw within 5%', () => {
    const rng = new Rng(42);
    const model = fitCostModel(synthCells(() => 1 + 0.03 * (2 * rng.nextFloat() - 1)), { cores: CORES, lockstep: LOCKSTEP, averageOnly: true });
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

  it('reads step records that each cover a round of K steps per step', () => {
    const record = (step: number, count: number): StepRecord => ({ step, t0: 0, t1: 0.1, t2: 1, t3: 1.1, t4: 1.2, loss: 1, count,
      ranks: [{ rank: 0, sentAt: 0.1, receivedAt: 1, coordEncodeMs: 0, coordDecodeMs: 0, loadMs: 0, computeMs: 0.8, workerDecodeMs: 0, workerEncodeMs: 0, bytesSent: 0, bytesReceived: 0, count }] });
    // batch 10, averaging every 16 steps: 160 examples a record; the last, short batch of an epoch is no round
    const rounds = observeCell('threads', 10, SMALL, [record(0, 160), record(1, 160), record(2, 160)]);
    expect(rounds.stepMs).toBeCloseTo(1.2 / 16, 12);
    expect(rounds.stepsPerRecord).toBe(16);
    expect(rounds.ranks[0]!.computeMs).toBeCloseTo(0.8 / 16, 12);
    expect(rounds.ranks[0]!.shard).toBe(10);
    expect(rounds.reduceMs).toBeCloseTo(0.1 / 16, 12);
    expect(observeCell('threads', 10, SMALL, [record(0, 10), record(1, 10), record(2, 4)]).stepMs).toBeCloseTo(1.2, 12);
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
  it('cpu=0.5: every CPU part of the step takes twice as long, the network\'s wire time does not', () => {
    const model = truthModel();
    const network = { latencyMs: 0.2, bandwidthBitsPerS: 1e9 };
    const s: Scenario = { transport: 'ws', workers: 4, batch: 1024, net: LARGE, network, cores: 4 };
    const full = predictStep(model, s);
    const half = predictStep(model, { ...s, cpu: 0.5 });
    const wireMs = 2 * 0.2 + (4 * full.bytesPerRank * 8) / 1e9 * 1000;
    expect(half.computeMs).toBeCloseTo(2 * full.computeMs, 9);
    expect(half.updateMs).toBeCloseTo(2 * full.updateMs, 9);
    expect(half.overheadMs).toBeCloseTo(2 * full.overheadMs, 9);
    expect(half.communicationMs).toBeCloseTo(2 * (full.communicationMs - wireMs) + wireMs, 9);
    expect(half.stepMs).toBeCloseTo(half.overheadMs + half.computeMs + half.communicationMs + half.updateMs, 9);
    expect(half.assumptions.join('; ')).toMatch(/2\.00x as long on hosts of 0\.5/);
    expect(parseWhatIf('bandwidth=1Gbit,cpu=0.5').cpu).toBe(0.5);
    for (const bad of ['cpu=0', 'cpu=1.5', 'cpu=half']) expect(() => parseWhatIf(bad), bad).toThrow(/cpu must be a host's share of one core, above 0 and at most 1/);
  });

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
  it('parses average-every and wire', () => {
    const w = parseWhatIf('average-every=16,wire=bf16,workers=4,bandwidth=1Gbit');
    expect([w.averageEvery, w.wire, w.workers, w.latencyMs, w.bandwidthBitsPerS]).toEqual([16, 'bf16', [4], 0, 1e9]);
    expect(parseWhatIf('workers=4')).toMatchObject({ averageEvery: null, wire: null });
    expect(parseWhatIf('average-every=1,wire=fp16,transport=ws')).toMatchObject({ averageEvery: 1, wire: 'fp16' });
  });
  it('rejects an average-every that is not a whole number of steps ≥ 1 and a wire that is not a format, naming the key and the fix', () => {
    for (const k of ['0', '1.5', '-2', 'x', '']) {
      expect(() => parseWhatIf(`average-every=${k}`)).toThrow(new RegExp(`average-every must be a whole number of steps per exchange, at least 1 .*got '${k}'`));
    }
    expect(() => parseWhatIf('wire=int8')).toThrow(/wire must be fp32, fp16 or bf16, got 'int8'/);
    expect(() => parseWhatIf('wire=BF16')).toThrow(/wire must be fp32, fp16 or bf16/);
    expect(() => parseWhatIf('averageevery=4')).toThrow(/unknown key 'averageevery'; use .*average-every, wire/);
  });
  it('refuses a wire for a transport without one, unless the what-if is a network', () => {
    expect(() => parseWhatIf('transport=threads,wire=bf16')).toThrow(/wire=bf16 sets the format on the WebSocket, and transport=threads sends nothing over a wire .*drop wire=, use transport=ws, or add bandwidth=/);
    expect(() => parseWhatIf('transport=inproc,wire=fp32')).toThrow(/transport=inproc sends nothing over a wire/);
    expect(parseWhatIf('transport=threads,wire=bf16,bandwidth=1Gbit').wire).toBe('bf16');
    expect(() => checkWhatIfWire(parseWhatIf('wire=bf16'), ['inproc', 'threads'])).toThrow(/--what-if wire=bf16: none of the measured transports \(inproc, threads\) sends over a wire.*add --transport ws, or add bandwidth=/);
    expect(() => checkWhatIfWire(parseWhatIf('wire=bf16'), ['inproc', 'ws'])).not.toThrow();
    expect(() => checkWhatIfWire(parseWhatIf('wire=bf16,bandwidth=1Gbit'), ['inproc', 'threads'])).not.toThrow();
  });
});

describe('ws ranks that cross the wire', () => {
  const comm = (m: CostModel, workers: number, batch: number) => predictStep(m, { transport: 'ws', workers, batch, net: SMALL }).communicationMs;

  it('the coordinator computing rank 0 leaves ws x2 one remote rank: the exchange of ws x1 at the same shard', () => {
    const computing: CostModel = { ...truthModel(), averageOnly: false };
    expect(comm(computing, 2, 256)).toBeCloseTo(comm(computing, 1, 128), 12);
    // a coordinator that only averages has two remote ranks, and its exchange is longer
    expect(comm(truthModel(), 2, 256)).toBeGreaterThan(comm(computing, 2, 256) + 1e-6);
  });

  it('on emulated hosts every remote rank\'s bytes cross the coordinator\'s one link: each adds its whole per-byte time', () => {
    const base = truthModel();
    const ws = { ...base.transports.ws!, bytesPerExample: 0 };
    const plain: CostModel = { ...base, averageOnly: false, transports: { ...base.transports, ws } };
    const emulated: CostModel = { ...plain, hostPerWorker: ['ws'] };
    const bytes = ws.bytesFixed + ws.bytesPerParam * SMALL.params;
    const serial = Math.min(ws.handoffPerRankMs + ws.handoffPerByteMs * bytes, ws.serialPerRankMs! + ws.serialPerByteMs * bytes);
    const step = (m: CostModel, w: number) => comm(m, w + 1, 1024) - comm(m, w, 1024);
    // one more remote rank: its σ and encode/decode everywhere, and on one shared link its bytes' time
    expect(step(emulated, 3)).toBeCloseTo(step(emulated, 2), 9);
    expect(step(emulated, 3) - step(plain, 3)).toBeCloseTo(ws.handoffPerByteMs * bytes - serial, 9);
    expect(ws.handoffPerByteMs * bytes - serial).toBeGreaterThan(0);
  });
});
