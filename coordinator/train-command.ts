/**
 * `dpt train`: assemble a session from the config, train with progress and per-epoch lines,
 * save the model. The worker group is always closed, also when training fails.
 */
import type { TrainConfig } from '../src/config.js';
import { stepsPerEpoch } from '../src/data/batches.js';
import { saveModel } from '../src/model/safetensors.js';
import { Profiler } from '../src/profile/profiler.js';
import { summarize } from '../src/profile/summary.js';
import { profileTables } from '../src/profile/tables.js';
import { writeTrace } from '../src/profile/trace.js';
import { ProgressBar } from '../src/progress.js';
import { jsonReporter, textReporter } from '../src/report.js';
import { openSession, startGroup, trainingRun } from './session.js';
import { runTraining, type TrainingResult } from './trainer.js';

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
  const plannedSteps = Math.min(config.maxSteps ?? Infinity, config.epochs * steps);
  const profiler = config.profile || config.trace !== null ? new Profiler(group.world, config.burnIn, plannedSteps) : null;
  let result: TrainingResult;
  try {
    const run = trainingRun(session, group);
    run.profiler = profiler;
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
  if (profiler !== null) reportProfile(profiler, config, out);
  if (config.save !== null) saveModel(config.save, session.network.layout, session.params, config.spec);
  reporter.done({
    best: result.best, final: result.epochs.at(-1) ?? null, steps: result.steps,
    seconds: (performance.now() - t0) / 1000, saved: config.save,
  });
  return result;
}

function reportProfile(profiler: Profiler, config: TrainConfig, out: (line: string) => void): void {
  if (config.trace !== null) {
    const events = writeTrace(config.trace, profiler);
    if (!config.json) out(`Wrote ${events} trace events to ${config.trace} (open it in https://ui.perfetto.dev)`);
  }
  if (!config.profile) return;
  if (profiler.stepCount <= profiler.burnIn) {
    out(`Profile: only ${profiler.stepCount} steps ran, all within the ${profiler.burnIn} burn-in steps; lower --burn-in or run more steps`);
    return;
  }
  const s = summarize(profiler);
  if (config.json) {
    const { losses: _losses, walls: _walls, ...rest } = s;
    out(JSON.stringify({ event: 'profile', ...rest }));
  } else {
    out('');
    for (const line of profileTables(s)) out(line);
  }
}
