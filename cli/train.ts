/**
 * `dpt train`: assemble a session from the config, train with progress and per-epoch lines,
 * save the model. Nothing trained is lost: checkpoints every --checkpoint-every steps; SIGINT or
 * SIGTERM finishes the current step, writes a checkpoint and only then closes the group (which
 * stops the workers); a run that fails part-way writes a rescue checkpoint of its last completed
 * step. This command is the one owner of both signals while it trains. The worker group is
 * always closed.
 */
import { interruptCheckpointPath, type TrainConfig } from '../src/config.js';
import { stepsPerEpoch } from '../src/data/batches.js';
import { saveModel } from '../src/model/safetensors.js';
import { Profiler } from '../src/profile/profiler.js';
import { summarize } from '../src/profile/summary.js';
import { profileTables } from '../src/profile/tables.js';
import { writeTrace } from '../src/profile/trace.js';
import { ProgressBar } from './progress.js';
import { jsonReporter, textReporter } from './report.js';
import { saveCheckpoint, settingsOf } from '../coordinator/checkpoint.js';
import { openSession, startGroup, trainingRun, type Session } from '../coordinator/session.js';
import { runTraining, type TrainingPosition, type TrainingResult } from '../coordinator/trainer.js';
import { verifyEquivalence } from '../coordinator/verify-equivalence.js';

export async function trainCommand(config: TrainConfig, out: (line: string) => void = (l) => console.log(l),
  explicit: ReadonlySet<string> = new Set()): Promise<TrainingResult> {
  const t0 = performance.now();
  const session = await openSession(config, undefined, explicit);
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
  const run = trainingRun(session, group);
  const plannedSteps = Math.min(config.maxSteps ?? Infinity, config.epochs * steps);
  const profiler = config.profile || config.trace !== null ? new Profiler(group.world, config.burnIn, plannedSteps) : null;
  run.profiler = profiler;
  let lastPosition: TrainingPosition | null = null;
  let signal: NodeJS.Signals | null = null;
  const onSignal = (s: NodeJS.Signals) => {
    if (signal !== null) process.exit(130); // a second Ctrl-C: stop now
    signal = s;
    progress.clear();
    process.stderr.write(`dpt: ${s} received: finishing the current step, then writing a checkpoint (press Ctrl-C again to quit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const checkpointEvery = config.checkpoint !== null ? config.checkpointEvery : null;
  let result: TrainingResult;
  let stopReason = 'training finished';
  try {
    if (config.verifyEquivalence !== null) {
      const v = await verifyEquivalence(session, group, config.verifyEquivalence, config.equivalenceTolerance);
      out(config.json ? JSON.stringify({ event: 'equivalence', ...v })
        : `Equivalence: ${v.steps} steps single-node vs ${config.transport} x ${config.workers}: max |Δparam| = ${v.maxAbsDiff.toExponential(2)} (tolerance ${v.tolerance}), ${v.seconds.toFixed(1)} s`);
    }
    run.stopRequested = () => signal !== null;
    run.events = {
      onStep(done, total, epoch) {
        if (done === 1) progress.begin();
        progress.update(done, total, config.batch, `Epoch ${epoch}`);
      },
      onEpoch(r) {
        progress.clear();
        reporter.epoch(r);
      },
      afterStep(position) {
        // a local-SGD round moves several steps at once: checkpoint when a multiple of N was passed
        const before = lastPosition?.globalStep ?? session.resumed?.position.globalStep ?? 0;
        lastPosition = position;
        if (checkpointEvery !== null && Math.floor(position.globalStep / checkpointEvery) > Math.floor(before / checkpointEvery)) {
          writeCheckpoint(session, run.sgd.velocity, config.checkpoint!, position);
        }
      },
    };
    result = await runTraining(run);
    // before the group is closed: closing stops the workers, and a failure while stopping them
    // must not cost the steps already trained
    if (result.interrupted !== null) {
      writeCheckpoint(session, run.sgd.velocity, interruptCheckpointPath(config), result.interrupted);
      stopReason = `interrupted by ${signal}`;
    }
  } catch (e) {
    progress.clear();
    stopReason = 'training failed on the coordinator';
    if (lastPosition !== null) {
      const rescue = interruptCheckpointPath(config);
      try {
        writeCheckpoint(session, run.sgd.velocity, rescue, lastPosition);
        (e as Error).message += `\n  the ${(lastPosition as TrainingPosition).globalStep} steps trained so far are saved in ${rescue}: continue with --resume ${rescue}`;
      } catch (writeError) {
        // the training failure is what the user must read first; the lost rescue comes after it
        (e as Error).message += `\n  and the rescue checkpoint could not be written to ${rescue}: ${(writeError as Error).message}`;
      }
    }
    throw e;
  } finally {
    progress.clear();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await group.close(stopReason);
  }
  if (result.interrupted !== null) {
    const path = interruptCheckpointPath(config);
    out(config.json
      ? JSON.stringify({ event: 'interrupted', signal, checkpoint: path, globalStep: result.interrupted.globalStep })
      : `Interrupted by ${signal} after ${result.interrupted.globalStep} steps: checkpoint written to ${path}; continue with --resume ${path}`);
    process.exitCode = 130;
    return result;
  }
  if (profiler !== null) reportProfile(profiler, config, out);
  if (config.save !== null) saveModel(config.save, session.network.layout, session.params, config.spec);
  reporter.done({
    best: result.best, final: result.epochs.at(-1) ?? null, steps: result.steps,
    seconds: (performance.now() - t0) / 1000, saved: config.save,
  });
  return result;
}

function writeCheckpoint(s: Session, velocity: Float32Array | null, path: string, position: TrainingPosition): void {
  saveCheckpoint(path, s.network.layout, { position, settings: settingsOf(s.config), params: s.params, velocity });
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
