/**
 * Ctrl-C under WebSocket workers, with real processes: `dpt launch` and `dpt train --transport
 * ws` finish the step, write the checkpoint, stop their workers and exit 130, whether the signal
 * reaches the coordinator alone (kill PID) or the whole process group as a terminal's Ctrl-C does
 * (kill -PGID); `--resume` then ends bit-identical to the same run with no interruption.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, spawnDpt, workerPids, type Run, until } from '../helpers/cli.js';
import { tempDir } from '../helpers/idx-fixtures.js';
import { checkpointPosition, expectResumedFrom } from '../helpers/resume.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const EPOCHS = 2;
const STEPS_PER_EPOCH = 500;
// 2 epochs of 500 steps on 2 ranks (rank 0 on the coordinator, one worker process); the signal is sent once epoch 1 is reported, leaving most of
// epoch 2 for it to land in
const RUN = ['--workers', '2', '--epochs', String(EPOCHS), '--train-limit', String(STEPS_PER_EPOCH * 10), '--batch', '10',
  '--momentum', '0.5', '--eval-set', 'validation', '--json'];
const COMMANDS = { launch: ['launch'], 'train --transport ws': ['train', '--transport', 'ws'] } as const;

const dir = tempDir();
let referenceRun: Promise<Buffer> | null = null;
/** The same training, uninterrupted (launch and train --transport ws are one code path). */
function reference(): Promise<Buffer> {
  referenceRun ??= (async () => {
    const path = join(dir, 'reference.safetensors');
    const r = spawnDpt(['launch', ...RUN, '--save', path], started);
    expect(await r.exit, r.err.join('\n')).toBe(0);
    return readFileSync(path);
  })();
  return referenceRun;
}

/** The coordinator leads a process group of its own, as a shell's foreground job does. */
const spawnGroupLeader = (args: string[]): Run => spawnDpt(args, started, {}, true);


const CASES = [
  { command: 'launch', target: 'process group', signal: 'SIGINT' },
  { command: 'train --transport ws', target: 'process group', signal: 'SIGINT' },
  { command: 'train --transport ws', target: 'coordinator', signal: 'SIGINT' },
  { command: 'launch', target: 'coordinator', signal: 'SIGTERM' },
] as const;

describe('interrupting a run on WebSocket workers', () => {
  for (const { command, target, signal } of CASES) it(`${command}, ${signal} to the ${target}: checkpoint written, workers stopped, resume bit-identical`, async () => {
    const ref = reference();
    const ck = join(dir, `${command.replaceAll(' ', '_')}-${target.replace(' ', '_')}-${signal}.ckpt`);
    const run = spawnGroupLeader([...COMMANDS[command], ...RUN, '--checkpoint', ck]);
    await until('the end of epoch 1', () => run.out.some((l) => l.includes('"event":"epoch"')), run);
    const pids = workerPids(run.err);
    expect(pids).toHaveLength(1);
    process.kill(target === 'process group' ? -run.child.pid! : run.child.pid!, signal);
    expect(await run.exit, run.err.join('\n')).toBe(130);

    const interrupted = JSON.parse(run.out.at(-1)!);
    expect(interrupted).toMatchObject({ event: 'interrupted', signal, checkpoint: ck });
    expect(existsSync(ck)).toBe(true);
    const position = checkpointPosition(ck);
    expect(position.globalStep).toBe(interrupted.globalStep);
    expect(position.globalStep).toBeGreaterThan(STEPS_PER_EPOCH);
    expect(position.globalStep).toBeLessThan(EPOCHS * STEPS_PER_EPOCH);
    // the workers finished the step and were stopped by the coordinator, not killed by the signal
    // and told why, so their logs do not read as a finished run
    expect(run.err.filter((l) => new RegExp(`\\[worker \\d\\] stopping: interrupted by ${signal} `).test(l))).toHaveLength(1);
    for (const pid of pids) {
      for (let i = 0; i < 40 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
      expect(alive(pid), `worker pid ${pid}`).toBe(false);
    }

    const model = join(dir, `${command.replaceAll(' ', '_')}-${target.replace(' ', '_')}-${signal}.safetensors`);
    const resumed = spawnDpt([...COMMANDS[command], ...RUN, '--resume', ck, '--save', model], started);
    expect(await resumed.exit, resumed.err.join('\n')).toBe(0);
    expectResumedFrom(resumed.out, ck, position, EPOCHS);
    expect(Buffer.compare(readFileSync(model), await ref), 'the resumed model differs from the uninterrupted run').toBe(0);
  });
});
