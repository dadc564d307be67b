/**
 * Workers started by hand outlive their coordinator: with real processes on 127.0.0.1, a
 * coordinator SIGKILLed after its first checkpoint and restarted with --resume on the same port
 * gets the same worker processes back, and the run ends bit-identical to one with no failure.
 * A worker whose coordinator does not come back gives up at --reconnect-timeout; a worker told
 * to stop does not reconnect.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, spawnDpt, workerPids, type Run, until } from '../helpers/cli.js';
import { tempDir } from '../helpers/idx-fixtures.js';
import { checkpointPosition, expectResumedFrom } from '../helpers/resume.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const TOKEN = { DPT_TOKEN: 'reconnect-test-token' };
const dpt = (args: string[]): Run => spawnDpt(args, started, TOKEN);

const TRAIN_LIMIT = 1500;
// 2 epochs of 150 steps; the checkpoint at step 160 (epoch 2, step 10) is the first and only one
// three ranks: rank 0 on the coordinator, two worker processes
const RUN = ['--workers', '3', '--epochs', '2', '--train-limit', String(TRAIN_LIMIT), '--eval-set', 'validation', '--json'];
const LOST = (url: string, limit: number) =>
  new RegExp(`^lost the coordinator at ${url} \\((.+)\\); reconnecting until \\d\\d:\\d\\d:\\d\\d \\(--reconnect-timeout ${limit}\\)$`);

const dir = tempDir();

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** Resolves with the exit code, or 'still running' after `ms`. */
function exitWithin(run: Run, ms: number): Promise<number | null | 'still running'> {
  return Promise.race([run.exit, new Promise<'still running'>((r) => setTimeout(() => r('still running'), ms))]);
}

describe('dpt worker after losing its coordinator', () => {
  it('the same two worker processes rejoin a coordinator resumed on the same port; the run ends bit-identical and they exit 0 on stop', async () => {
    const refPath = join(dir, 'reference.safetensors');
    const reference = dpt(['launch', ...RUN, '--save', refPath]);
    expect(await reference.exit, reference.err.join('\n')).toBe(0);

    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const ck = join(dir, 'coord.ckpt');
    const first = dpt(['coordinator', '--listen', `127.0.0.1:${port}`, ...RUN, '--checkpoint', ck, '--checkpoint-every', '160']);
    await until('the listening line', () => first.err.some((l) => l.includes('listening on')), first);
    const workers = [0, 1].map(() => dpt(['worker', '--connect', url]));
    const pids = workers.map((w) => w.child.pid!).sort();
    await until('the first checkpoint', () => existsSync(ck), first);
    first.child.kill('SIGKILL');
    expect(await first.exit).toBeNull();
    expect(workerPids(first.err).sort()).toEqual(pids);

    for (const w of workers) {
      await until('the reconnecting line', () => w.err.some((l) => LOST(url, 60).test(l)), w, 10_000);
      expect(w.err.filter((l) => l.startsWith('lost the coordinator')), w.err.join('\n')).toHaveLength(1);
    }
    for (const pid of pids) expect(alive(pid), `worker pid ${pid}`).toBe(true);

    const position = checkpointPosition(ck);
    expect(position).toMatchObject({ epoch: 2, stepInEpoch: 10, globalStep: 160 });
    const model = join(dir, 'resumed.safetensors');
    const resumed = dpt(['coordinator', '--listen', `127.0.0.1:${port}`, ...RUN, '--resume', ck, '--save', model]);
    expect(await resumed.exit, resumed.err.join('\n')).toBe(0);
    expect(workerPids(resumed.err).sort(), 'the workers that joined the resumed coordinator').toEqual(pids);
    expectResumedFrom(resumed.out, ck, position, 2);
    for (const w of workers) {
      expect(await exitWithin(w, 10_000), w.err.join('\n')).toBe(0);
      const log = w.err.join('\n');
      expect(log).toMatch(new RegExp(`^reconnected to ${url} after \\d+\\.\\d s$`, 'm'));
      expect(log).toMatch(/^stopping: training finished \(last step 299\)$/m);
    }
    expect(Buffer.compare(readFileSync(model), readFileSync(refPath)), 'the resumed model differs from the run with no failure').toBe(0);
  });

  it('a worker whose coordinator does not come back exits 2 at --reconnect-timeout, naming the address and the limit', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    // far more steps than the test lets it run
    const coord = dpt(['coordinator', '--listen', `127.0.0.1:${port}`, '--workers', '1', '--epochs', '30', '--eval-set', 'validation', '--json']);
    await until('the listening line', () => coord.err.some((l) => l.includes('listening on')), coord);
    const worker = dpt(['worker', '--connect', url, '--reconnect-timeout', '1']);
    await until('the join', () => workerPids(coord.err).length === 1, coord);
    coord.child.kill('SIGKILL');
    const t0 = Date.now();
    expect(await exitWithin(worker, 10_000), worker.err.join('\n')).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const log = worker.err.join('\n');
    expect(worker.err.some((l) => LOST(url, 1).test(l)), log).toBe(true);
    expect(log).toMatch(new RegExp(`dpt: error: the coordinator at ${url} did not come back within 1 s \\(--reconnect-timeout 1; last attempt: connection refused`));
  });

  // A SIGKILLed coordinator runs no exit handler; its local workers also die writing to the pipe
  // it held, but that is an accident of where their output goes, not the rule.
  it('dpt launch tells its local workers not to reconnect (--reconnect-timeout 0): they end with their coordinator', async () => {
    const run = dpt(['launch', ...RUN]);
    await until('the workers joining', () => workerPids(run.err).length === 2, run);
    const argvs = workerPids(run.err).map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
    for (const argv of argvs) expect(argv.join(' ')).toMatch(/ worker --connect ws:\/\/\S+ --reconnect-timeout 0( |$)/);
    expect(await run.exit, run.err.join('\n')).toBe(0);
  });

  it('a worker told to stop exits 0 at once and does not reconnect', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const coord = dpt(['coordinator', '--listen', `127.0.0.1:${port}`, '--workers', '1', '--epochs', '1', '--train-limit', '600', '--max-steps', '10', '--eval-set', 'validation', '--json']);
    await until('the listening line', () => coord.err.some((l) => l.includes('listening on')), coord);
    const worker = dpt(['worker', '--connect', url]);
    expect(await coord.exit, coord.err.join('\n')).toBe(0);
    expect(await exitWithin(worker, 5_000), worker.err.join('\n')).toBe(0);
    expect(worker.err.join('\n')).toMatch(/^stopping: training finished/m);
    expect(worker.err.join('\n')).not.toMatch(/lost the coordinator|reconnect/);
  });
});
