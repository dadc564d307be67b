import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, dpt } from '../helpers/cli.js';
import { tempDir } from '../helpers/idx-fixtures.js';
import { checkpointPosition, expectResumedFrom } from '../helpers/resume.js';

const EPOCHS = 20;
const STEPS_PER_EPOCH = 300;
const RUN = ['train', '--json', '--epochs', String(EPOCHS), '--train-limit', String(STEPS_PER_EPOCH * 10), '--batch', '10', '--momentum', '0.5', '--weight-decay', '1'];
// past epoch 1, so that a resume that started over would print epoch 1 again (helpers/resume.ts)
const EVERY = String(STEPS_PER_EPOCH + 100);

async function startUntilCheckpoint(args: string[], checkpoint: string) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  while (!existsSync(checkpoint)) await new Promise((r) => setTimeout(r, 10));
  return { child, exited, stdout: () => stdout };
}

describe('checkpoints', () => {
  it('a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted run (momentum and weight decay on)', async () => {
    const dir = tempDir();
    const reference = join(dir, 'reference.safetensors');
    expect(dpt([...RUN, '--save', reference]).code).toBe(0);

    const ck = join(dir, 'run.ckpt');
    const { child, exited } = await startUntilCheckpoint([...RUN, '--checkpoint', ck, '--checkpoint-every', EVERY], ck);
    child.kill('SIGKILL');
    expect(await exited).toBeNull(); // killed, not finished
    const position = checkpointPosition(ck);
    const resumedModel = join(dir, 'resumed.safetensors');
    const r = dpt([...RUN, '--resume', ck, '--save', resumedModel]);
    expect(r.code, r.stderr).toBe(0);
    expectResumedFrom(r.stdout.trim().split('\n'), ck, position, EPOCHS);
    expect(Buffer.compare(readFileSync(reference), readFileSync(resumedModel))).toBe(0);
  });

  it('SIGINT finishes the step, writes a checkpoint and exits 130; resuming completes the same run', async () => {
    const dir = tempDir();
    const reference = join(dir, 'reference.safetensors');
    expect(dpt([...RUN, '--save', reference]).code).toBe(0);
    const ck = join(dir, 'run.ckpt');
    const { child, exited, stdout } = await startUntilCheckpoint([...RUN, '--checkpoint', ck, '--checkpoint-every', EVERY], ck);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const last = JSON.parse(stdout().trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ event: 'interrupted', signal: 'SIGINT', checkpoint: ck });
    const position = checkpointPosition(ck);
    expect(position.globalStep).toBe(last.globalStep);
    const resumedModel = join(dir, 'resumed.safetensors');
    const r = dpt([...RUN, '--resume', ck, '--save', resumedModel]);
    expect(r.code, r.stderr).toBe(0);
    expectResumedFrom(r.stdout.trim().split('\n'), ck, position, EPOCHS);
    expect(Buffer.compare(readFileSync(reference), readFileSync(resumedModel))).toBe(0);
  });

  // local SGD with momentum kept per rank: the ranks' own velocities are in the checkpoint, and
  // rounds of 8 steps never land on step 400 (epochs of 300 steps end with a round of 4), so the
  // checkpoint is written when a round passes it
  for (const transport of ['inproc', 'threads']) {
    it(`${transport} x2 averaging every 8 steps: SIGINT at a round's end and --resume end bit-identical to an uninterrupted run`, async () => {
      const local = [...RUN, '--transport', transport, '--workers', '2', '--average-every', '8'];
      const dir = tempDir();
      const reference = join(dir, 'reference.safetensors');
      expect(dpt([...local, '--save', reference]).code).toBe(0);
      const ck = join(dir, 'run.ckpt');
      const { child, exited, stdout } = await startUntilCheckpoint([...local, '--checkpoint', ck, '--checkpoint-every', EVERY], ck);
      const first = checkpointPosition(ck);
      expect(first.globalStep).toBe(404);
      expect(first.rankVelocities === undefined).toBe(true); // tensors, not JSON
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      const last = JSON.parse(stdout().trim().split('\n').at(-1)!);
      const position = checkpointPosition(ck);
      expect(position.globalStep).toBe(last.globalStep);
      const resumedModel = join(dir, 'resumed.safetensors');
      const r = dpt([...local, '--resume', ck, '--save', resumedModel]);
      expect(r.code, r.stderr).toBe(0);
      expectResumedFrom(r.stdout.trim().split('\n'), ck, position, EPOCHS);
      expect(Buffer.compare(readFileSync(reference), readFileSync(resumedModel))).toBe(0);
    });
  }

  it('refuses a resume whose flags change the mathematics, naming the flag', () => {
    const dir = tempDir();
    const ck = join(dir, 'run.ckpt');
    expect(dpt(['train', '--json', '--epochs', '1', '--train-limit', '100', '--checkpoint', ck, '--checkpoint-every', '5']).code).toBe(0);
    const r = dpt(['train', '--resume', ck, '--batch', '20']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--batch conflicts with the checkpoint \(10 there, 20 here\)/);
    const m = dpt(['train', '--resume', join(dir, 'nope')]);
    expect(m.stderr).toMatch(/nope: cannot read \(ENOENT\)/);
  });

  it('rejects --checkpoint-every without --checkpoint', () => {
    const r = dpt(['train', '--checkpoint-every', '10']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--checkpoint-every needs --checkpoint FILE/);
  });
});
