/**
 * `dpt train`: assemble a session from the config, train with progress and per-epoch lines,
 * save the model. The worker group is always closed, also when training fails.
 */
import type { TrainConfig } from '../src/config.js';
import { stepsPerEpoch } from '../src/data/batches.js';
import { saveModel } from '../src/model/safetensors.js';
import { ProgressBar } from '../src/progress.js';
import { jsonReporter, textReporter } from '../src/report.js';
import { openSession, startGroup, trainingRun } from './session.js';
import { runTraining, type TrainingResult } from './trainer.js';
import { verifyEquivalence } from './verify-equivalence.js';

export async function trainCommand(config: TrainConfig, out: (line: string) => void = (l) => console.log(l)): Promise<TrainingResult> {
  const t0 = performance.now();
  const session = await openSession(config);
  config = session.config;
  const reporter = config.json ? jsonReporter(out) : textReporter(out);
  const steps = stepsPerEpoch(session.train.count, config.batch);
  reporter.header({
    config, dataDir: session.data.dir, trainCount: session.train.count, evalCount: session.evalSet.count,
    kernels: session.kernels.name, kernelNotes: session.kernelNotes, paramsSource: session.paramsSource,
    parameters: session.network.layout.size, stepsPerEpoch: steps,
  });
  const progress = new ProgressBar(!config.json && process.stderr.isTTY === true);
  const group = await startGroup(session);
  let result: TrainingResult;
  try {
    if (config.verifyEquivalence !== null) {
      const v = await verifyEquivalence(session, group, config.verifyEquivalence, config.equivalenceTolerance);
      out(config.json ? JSON.stringify({ event: 'equivalence', ...v })
        : `Equivalence: ${v.steps} steps single-node vs ${config.transport} x ${config.workers}: max |Δparam| = ${v.maxAbsDiff.toExponential(2)} (tolerance ${v.tolerance}), ${v.seconds.toFixed(1)} s`);
    }
    const run = trainingRun(session, group);
    run.events = {
      onStep(done, total, epoch) {
        if (done === 1) progress.begin();
        progress.update(done, total, config.batch, `Epoch ${epoch}`);
      },
      onEpoch(r) {
        progress.clear();
        reporter.epoch(r);
      },
    };
    result = await runTraining(run);
  } finally {
    progress.clear();
    await group.close();
  }
  if (config.save !== null) saveModel(config.save, session.network.layout, session.params, config.spec);
  reporter.done({
    best: result.best, final: result.epochs.at(-1) ?? null, steps: result.steps,
    seconds: (performance.now() - t0) / 1000, saved: config.save,
  });
  return result;
}
