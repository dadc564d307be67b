/**
 * What a training run prints: the resolved configuration once, one line per epoch in the book's
 * form ("Epoch 3: 9312 / 10000"), and a summary — as text for people or as one JSON object per
 * line for machines.
 */
import { coordinatorComputesRank0, wsWorkerProcesses, type TrainConfig } from '../src/config.js';
import { describeSpec } from '../src/model/spec.js';
import type { EpochReport } from '../coordinator/trainer.js';
import { fmtInt } from '../src/profile/format.js';
import { scaledEta } from '../src/optim/lr-schedule.js';

export interface RunHeader {
  config: TrainConfig;
  dataDir: string;
  trainCount: number;
  evalCount: number;
  kernels: string;
  kernelNotes: string[];
  paramsSource: string;
  parameters: number;
  stepsPerEpoch: number;
}

export interface RunSummary {
  best: EpochReport | null;
  final: EpochReport | null;
  steps: number;
  seconds: number;
  saved: string | null;
}

export interface Reporter {
  header(h: RunHeader): void;
  epoch(r: EpochReport): void;
  done(s: RunSummary): void;
}

const pct = (c: number, t: number): string => `${((100 * c) / t).toFixed(2)}%`;

export function textReporter(out: (line: string) => void): Reporter {
  return {
    header(h) {
      const c = h.config;
      out(`dpt train: ${describeSpec(c.spec)} (${fmtInt(h.parameters)} parameters)`);
      out(`  data        ${fmtInt(h.trainCount)} training images, ${fmtInt(h.evalCount)} ${c.evalSet} images, from ${h.dataDir}`);
      out(`  parameters  ${h.paramsSource}`);
      out(`  sgd         ${describeEta(c, h.stepsPerEpoch)}, mini-batch ${c.batch}, momentum ${c.momentum}, weight decay ${c.weightDecay}, ${c.shuffle ? 'shuffled' : 'unshuffled'} (order seed ${c.seed})`);
      out(`  schedule    ${c.epochs} epochs of ${fmtInt(h.stepsPerEpoch)} steps${c.maxSteps !== null ? `, at most ${fmtInt(c.maxSteps)} steps in total` : ''}`);
      out(`  kernels     ${h.kernels}${h.kernelNotes.length ? ` (${h.kernelNotes.join('; ')})` : ''}`);
      out(`  workers     ${c.transport} x ${c.workers}${describeWorkers(c)}${describeAveraging(c)}`);
    },
    epoch(r) {
      out(`Epoch ${r.epoch}: ${r.testCorrect} / ${r.testTotal}  (${pct(r.testCorrect, r.testTotal)})  loss ${r.loss.toFixed(4)}  ` +
        `${fmtInt(r.examples)} examples  ${r.trainSeconds.toFixed(2)} s  ${fmtInt(r.samplesPerSecond)} samples/s`);
    },
    done(s) {
      if (s.best && s.final) {
        out(`Done in ${s.seconds.toFixed(1)} s: best ${s.best.testCorrect} / ${s.best.testTotal} (${pct(s.best.testCorrect, s.best.testTotal)}) at epoch ${s.best.epoch}, ` +
          `final ${s.final.testCorrect} / ${s.final.testTotal} (${pct(s.final.testCorrect, s.final.testTotal)})`);
      } else {
        out(`Done in ${s.seconds.toFixed(1)} s: no epoch ran`);
      }
      if (s.saved) out(`Saved the parameters to ${s.saved}`);
    },
  };
}

/** What --workers N comes to: one node, or over ws who computes the ranks. */
function describeWorkers(c: TrainConfig): string {
  if (c.transport === 'inproc' && c.workers === 1) return ' (single node)';
  if (c.transport !== 'ws') return '';
  const n = wsWorkerProcesses(c);
  const processes = `${n} worker process${n === 1 ? '' : 'es'}`;
  return coordinatorComputesRank0(c) ? ` (rank 0 on the coordinator, ${processes})` : ` (${processes}${c.averageOnly ? ', the coordinator only averages' : ''})`;
}

/**
 * η as the run uses it: "eta 3" without scaling; "eta 38.4 (3, linear scaling from batch 10 to
 * 128)"; with warmup "eta 3 → 38.4 (linear scaling from batch 10 to 128, warmup 5 epochs = 25 steps)".
 */
export function describeEta(c: Pick<TrainConfig, 'eta' | 'lrScale' | 'lrReferenceBatch' | 'batch' | 'warmupEpochs'>, stepsPerEpoch: number): string {
  if (c.lrScale === 'none') return `eta ${c.eta}`;
  const scaled = Number(scaledEta({ eta: c.eta, scale: c.lrScale, referenceBatch: c.lrReferenceBatch, batch: c.batch, warmupEpochs: c.warmupEpochs }).toPrecision(6));
  const rule = `${c.lrScale} scaling from batch ${c.lrReferenceBatch} to ${c.batch}`;
  if (c.warmupEpochs === 0) return `eta ${scaled} (${c.eta}, ${rule})`;
  const steps = Math.round(c.warmupEpochs * stepsPerEpoch);
  return `eta ${c.eta} → ${scaled} (${rule}, warmup ${c.warmupEpochs} epoch${c.warmupEpochs === 1 ? '' : 's'} = ${fmtInt(steps)} steps)`;
}

/**
 * Local SGD as the run uses it, after the worker count: nothing with --average-every 1;
 * ", parameters averaged every 16 steps from epoch 3, each rank keeping its own momentum".
 */
export function describeAveraging(c: Pick<TrainConfig, 'averageEvery' | 'localSgdAfter' | 'averageOptimizerState' | 'momentum' | 'workers'>): string {
  if (c.averageEvery === 1 || c.workers === 1) return '';
  const from = c.localSgdAfter > 0 ? ` from epoch ${c.localSgdAfter + 1} (every step before)` : '';
  const momentum = c.momentum === 0 ? '' : c.averageOptimizerState ? ', momentum averaged with them' : ', each rank keeping its own momentum';
  return `, parameters averaged every ${c.averageEvery} steps${from}${momentum}`;
}

export function jsonReporter(out: (line: string) => void): Reporter {
  return {
    header(h) {
      out(JSON.stringify({ event: 'config', ...h.config, dataDir: h.dataDir, trainCount: h.trainCount, evalCount: h.evalCount,
        kernelsUsed: h.kernels, kernelNotes: h.kernelNotes, parameters: h.parameters, stepsPerEpoch: h.stepsPerEpoch, paramsSource: h.paramsSource }));
    },
    epoch(r) {
      out(JSON.stringify({ event: 'epoch', ...r }));
    },
    done(s) {
      out(JSON.stringify({
        event: 'done', steps: s.steps, seconds: s.seconds, saved: s.saved,
        bestEpoch: s.best?.epoch ?? null, bestCorrect: s.best?.testCorrect ?? null,
        finalCorrect: s.final?.testCorrect ?? null, testTotal: s.final?.testTotal ?? null,
      }));
    },
  };
}
