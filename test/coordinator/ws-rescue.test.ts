/**
 * The rescue checkpoint: a `dpt launch` run left with fewer workers than --min-workers fails,
 * naming the lost worker and the rule, and writes a checkpoint of its last completed step
 * (parameters, velocity, position) to --checkpoint; `--resume` from it continues at that step and
 * ends bit-identical to the same run with no failure.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../coordinator/checkpoint.js';
import { DEFAULTS } from '../../src/config.js';
import { layoutFor } from '../../src/model/spec.js';
import { spawnDpt, workerPids, type Run, until } from '../helpers/cli.js';
import { tempDir } from '../helpers/idx-fixtures.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const dpt = (args: string[]): Run => spawnDpt(args, started);

const TRAIN_LIMIT = 3000;
const STEPS_PER_EPOCH = 300; // batch 10
/** the step of the periodic checkpoint that says when to kill a worker: early in epoch 2, leaving ~270 steps for the loss to land there */
const KILL_AFTER = 330;
// three ranks, all needed: rank 0 on the coordinator and two worker processes, one of which is killed
const RUN = ['--workers', '3', '--min-workers', '3', '--epochs', '3', '--train-limit', String(TRAIN_LIMIT), '--eval-set', 'validation', '--json'];


const events = (run: Run) => run.out.map((l) => JSON.parse(l) as { event: string; epoch?: number; examples?: number; paramsSource?: string });

describe('ws: fewer workers than --min-workers', () => {
  it('the run fails naming the lost worker, writes a rescue checkpoint of its last completed step, and --resume continues from that step to the result of a run with no failure', async () => {
    const dir = tempDir();
    const ck = join(dir, 'run.ckpt');
    const refModel = join(dir, 'reference.safetensors');
    const model = join(dir, 'resumed.safetensors');
    // the same run with no failure, meanwhile
    const reference = dpt(['launch', ...RUN, '--save', refModel]);
    // The periodic checkpoint at step KILL_AFTER (in epoch 2) says when to kill; it is removed first,
    // so a checkpoint found after the failure is the rescue (the next periodic one would be later).
    const run = dpt(['launch', ...RUN, '--checkpoint', ck, '--checkpoint-every', String(KILL_AFTER)]);
    await until(`the checkpoint at step ${KILL_AFTER}`, () => existsSync(ck), run);
    rmSync(ck);
    const victim = workerPids(run.err)[1]!;
    process.kill(victim, 'SIGKILL');
    expect(await run.exit, run.err.join('\n')).toBe(2);

    const log = run.err.join('\n');
    const failed = new RegExp(`dpt: error: DPT_ERR_WORKER_LOST: worker 2 failed at step (\\d+): worker 2 \\(127\\.0\\.0\\.1:\\d+, \\S+ pid ${victim}\\) closed the connection \\(close code 1006\\); `
      + '2 of 3 ranks remain \\(rank 0 on the coordinator and 1 worker\\) and --min-workers is 3').exec(log);
    expect(failed, log).not.toBeNull();
    // the surviving worker is told the run failed, not that it finished
    expect(log).toMatch(/\[worker \d\] stopping: training failed on the coordinator/);
    // step ids count from 0: the failed step's id is the number of steps completed before it
    const done = Number(failed![1]);
    expect(done).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(done).toBeLessThan(2 * STEPS_PER_EPOCH);
    expect(log).toContain(`the ${done} steps trained so far are saved in ${ck}: continue with --resume ${ck}`);
    const at = { epoch: 2, stepInEpoch: done - STEPS_PER_EPOCH };
    const saved = loadCheckpoint(ck, layoutFor(DEFAULTS.spec)).position;
    expect({ globalStep: saved.globalStep, epoch: saved.epoch, stepInEpoch: saved.stepInEpoch, epochExamples: saved.epochExamples })
      .toEqual({ globalStep: done, ...at, epochExamples: at.stepInEpoch * 10 });

    const resumed = dpt(['launch', ...RUN, '--resume', ck, '--save', model]);
    expect(await resumed.exit, resumed.err.join('\n')).toBe(0);
    const out = events(resumed);
    expect(out[0]!.paramsSource).toBe(`resumed from ${ck} at epoch 2, step ${at.stepInEpoch} (${done} steps done)`);
    // it trains epochs 2 and 3 only, and epoch 2 counts the examples before the failure and after
    expect(out.filter((e) => e.event === 'epoch').map((e) => [e.epoch, e.examples])).toEqual([[2, TRAIN_LIMIT], [3, TRAIN_LIMIT]]);
    expect(await reference.exit, reference.err.join('\n')).toBe(0);
    expect(Buffer.compare(readFileSync(model), readFileSync(refModel)), 'the resumed model differs from the run with no failure').toBe(0);
  });
});
