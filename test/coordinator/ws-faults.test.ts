/**
 * Worker loss with real processes: `dpt launch` / `dpt coordinator` and `dpt worker` on
 * 127.0.0.1, workers killed with SIGKILL, frozen with SIGSTOP, replaced mid-run, and the
 * coordinator itself killed and resumed. Every run must count exactly the epoch's examples and
 * end with parameters bit-identical to the same run with no failure (the shard partition is
 * fixed by --workers and shards are summed in shard order, whoever computed them). --workers 3:
 * rank 0 on the coordinator and two worker processes, or three processes with --average-only.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, CLI, dpt as dptSync, spawnDpt, workerPids, type Run, until } from '../helpers/cli.js';
import { tempDir } from '../helpers/idx-fixtures.js';
import { checkpointPosition, expectResumedFrom } from '../helpers/resume.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const dpt = (args: string[], env: Record<string, string> = {}): Run => spawnDpt(args, started, env);

const TRAIN_LIMIT = 1500;
// 2 epochs of 150 steps; the checkpoint at step 25 tells the test that epoch 1 is under way
const RUN = ['--workers', '3', '--epochs', '2', '--train-limit', String(TRAIN_LIMIT), '--eval-set', 'validation', '--json'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));



function epochs(lines: string[]): { epoch: number; examples: number; steps: number }[] {
  return lines.map((l) => JSON.parse(l) as { event?: string; epoch: number; examples: number; steps: number }).filter((o) => o.event === 'epoch');
}

const dir = tempDir();
let referenceRun: Promise<Buffer> | null = null;
/** The same training with no failure, on 3 ws ranks (started once, shared by the tests). */
function reference(): Promise<Buffer> {
  referenceRun ??= (async () => {
    const path = join(dir, 'reference.safetensors');
    const r = dpt(['launch', ...RUN, '--save', path]);
    expect(await r.exit, r.err.join('\n')).toBe(0);
    expect(epochs(r.out).map((e) => e.examples)).toEqual([TRAIN_LIMIT, TRAIN_LIMIT]);
    return readFileSync(path);
  })();
  return referenceRun;
}

function expectSameModel(path: string, ref: Buffer): void {
  expect(Buffer.compare(readFileSync(path), ref), `${path} differs from the run with no failure`).toBe(0);
}

describe('ws worker loss with real processes', () => {
  it('kill -9 of one of 2 worker processes mid-epoch, the coordinator computing rank 0: training finishes, each epoch counts all its examples, parameters equal the run with no failure', async () => {
    const ref = reference();
    const ck = join(dir, 'kill.ckpt');
    const model = join(dir, 'kill.safetensors');
    const run = dpt(['launch', ...RUN, '--checkpoint', ck, '--checkpoint-every', '25', '--save', model]);
    await until('the first checkpoint', () => existsSync(ck), run);
    const pids = workerPids(run.err);
    expect(pids).toHaveLength(2);
    const victim = pids[1]!;
    process.kill(victim, 'SIGKILL');
    expect(await run.exit, run.err.join('\n')).toBe(0);
    const log = run.err.join('\n');
    expect(log).toMatch(new RegExp(`worker 2 \\(127\\.0\\.0\\.1:\\d+, \\S+ pid ${victim}\\) left`));
    expect(log).toMatch(/shard 2 \(rank 2's\) re-assigned to worker 1 /);
    const ep = epochs(run.out);
    expect(ep.map((e) => e.examples)).toEqual([TRAIN_LIMIT, TRAIN_LIMIT]);
    expectSameModel(model, await ref);
  });

  it('--average-only (three worker processes): a worker that stops answering (SIGSTOP) is timed out by --step-timeout and named; the run ends as with no failure and rank 0 on the coordinator', async () => {
    const ref = reference();
    const ck = join(dir, 'stop.ckpt');
    const model = join(dir, 'stop.safetensors');
    const run = dpt(['launch', ...RUN, '--average-only', '--step-timeout', '1', '--checkpoint', ck, '--checkpoint-every', '25', '--save', model]);
    await until('the first checkpoint', () => existsSync(ck), run);
    expect(workerPids(run.err)).toHaveLength(3);
    const frozen = workerPids(run.err)[2]!;
    process.kill(frozen, 'SIGSTOP');
    try {
      await until('the step timeout', () => run.err.some((l) => l.includes('--step-timeout')), run);
    } finally {
      process.kill(frozen, 'SIGCONT'); // it finds its socket closed and exits
    }
    expect(await run.exit, run.err.join('\n')).toBe(0);
    expect(run.err.join('\n')).toMatch(new RegExp(`worker 2 \\(127\\.0\\.0\\.1:\\d+, \\S+ pid ${frozen}\\) did not answer step \\d+ within 1 s \\(--step-timeout\\)`));
    expect(epochs(run.out).map((e) => e.examples)).toEqual([TRAIN_LIMIT, TRAIN_LIMIT]);
    expectSameModel(model, await ref);
  });

  it('a worker that joins mid-run takes the lost worker\'s rank and computes to the last step', async () => {
    const ref = reference();
    const env = { DPT_TOKEN: 'faults-test-token' };
    const ck = join(dir, 'join.ckpt');
    const model = join(dir, 'join.safetensors');
    const coord = dpt(['coordinator', '--listen', '127.0.0.1:0', ...RUN, '--checkpoint', ck, '--checkpoint-every', '25', '--save', model], env);
    await until('the listening line', () => coord.err.some((l) => l.includes('listening on')), coord);
    const url = /listening on (ws:\/\/\S+),/.exec(coord.err.find((l) => l.includes('listening on'))!)![1]!;
    // the coordinator computes rank 0: two workers
    const workers = [1, 2].map(() => dpt(['worker', '--connect', url], env));
    await until('the first checkpoint', () => existsSync(ck), coord);
    workers[0]!.child.kill('SIGKILL');
    await until('the loss', () => coord.err.some((l) => / left: /.test(l)), coord);
    const late = dpt(['worker', '--connect', url], env);
    await until('the late join', () => coord.err.some((l) => /joined \(2\/2\) before step \d+/.test(l)), coord);
    expect(await coord.exit, coord.err.join('\n')).toBe(0);
    expect(await late.exit).toBe(0);
    const joinedAt = Number(/joined \(2\/2\) before step (\d+)/.exec(coord.err.join('\n'))![1]);
    // the replacement was sent the last step of the run (300 steps: ids 0..299)
    expect(late.out.join('\n') + late.err.join('\n')).toMatch(/stopping: .*\(last step 299\)/);
    expect(joinedAt).toBeLessThan(299);
    expect(epochs(coord.out).map((e) => e.examples)).toEqual([TRAIN_LIMIT, TRAIN_LIMIT]);
    expectSameModel(model, await ref);
  });

  it('a coordinator killed with SIGKILL and resumed from its checkpoint ends bit-identical; its workers do not outlive it', async () => {
    const ref = reference();
    const ck = join(dir, 'coord.ckpt');
    // one checkpoint, at step 10 of epoch 2: a resume that started over would print epoch 1 again
    const run = dpt(['launch', ...RUN, '--checkpoint', ck, '--checkpoint-every', '160']);
    await until('the checkpoint', () => existsSync(ck), run);
    const pids = workerPids(run.err);
    run.child.kill('SIGKILL');
    expect(await run.exit).toBeNull();
    for (const pid of pids) {
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
      expect(alive(pid), `worker pid ${pid}`).toBe(false);
    }
    const position = checkpointPosition(ck);
    expect(position).toMatchObject({ epoch: 2, stepInEpoch: 10, globalStep: 160 });
    const model = join(dir, 'coord.safetensors');
    const resumed = dpt(['launch', ...RUN, '--resume', ck, '--save', model]);
    expect(await resumed.exit, resumed.err.join('\n')).toBe(0);
    expectResumedFrom(resumed.out, ck, position, 2);
    // the resumed epoch counts the examples before the kill (from the checkpoint) and after
    expect(epochs(resumed.out).map((e) => e.examples).at(-1)).toBe(TRAIN_LIMIT);
    expectSameModel(model, await ref);
  });

  it('refuses --min-workers above --workers and a --step-timeout that is not a positive number, naming the flag', () => {
    const a = dptSync(['launch', '--workers', '2', '--min-workers', '3']);
    expect(a.code).not.toBe(0);
    expect(a.stderr).toMatch(/--min-workers 3 exceeds --workers 2/);
    const b = dptSync(['launch', '--workers', '2', '--step-timeout', '0']);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/--step-timeout must be a number > 0, got '0'/);
  });
});
