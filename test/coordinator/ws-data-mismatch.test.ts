/**
 * --data local trusts each worker's own MNIST only after the handshake proved it is the
 * coordinator's: a worker whose training images differ refuses to join (it checks the setup's
 * digest), and a peer that claims another digest in its ready is refused by the coordinator —
 * both with DPT_ERR_DATA_MISMATCH, while the two healthy workers train on undisturbed.
 */
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { maxAbsDiff, runSteps } from '../../coordinator/equivalence.js';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { cliPath } from '../../coordinator/launch.js';
import { slice } from '../../src/data/mnist.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import { NIELSEN, realMnist } from '../helpers/fixtures.js';
import { idxBytes, writeMnistDir } from '../helpers/idx-fixtures.js';
import { HandClient } from './ws-hand-client.js';
import { replayPlan, trainUntil, until } from './ws-train-until.js';
import { TEST_TOKEN, wsGroupWithWorkers, type WsTestGroup } from './ws-workers.js';

const mnist = realMnist();
const train = slice(mnist.train, 0, 1009);
const open: WsTestGroup[] = [];
afterAll(async () => {
  await Promise.all(open.map((g) => g.close()));
});

/** An MNIST folder whose first 1100 training images are the real ones but for one pixel of image 500. */
function tamperedMnistDir(): string {
  const n = 1100;
  // a copy: the loaded images may be a Buffer, whose slice() is a view
  const images = new Uint8Array(mnist.train.images.subarray(0, n * 784));
  images[500 * 784 + 300] = 255 - images[500 * 784 + 300]!;
  return writeMnistDir({
    trainImages: idxBytes(0x803, [n, 28, 28], images), trainLabels: idxBytes(0x801, [n], mnist.train.labels.subarray(0, n)),
    testImages: idxBytes(0x803, [10, 28, 28], mnist.test.images.subarray(0, 7840)), testLabels: idxBytes(0x801, [10], mnist.test.labels.subarray(0, 10)),
  });
}

/** A real worker process; resolves with its exit code and stderr. */
function workerProcess(url: string, dataDir: string): Promise<{ exit: number | null; stderr: string; pid: number }> {
  const child = spawn(process.execPath, [cliPath(), 'worker', '--connect', url, '--data-dir', dataDir], { env: { ...process.env, DPT_TOKEN: TEST_TOKEN }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.on('exit', (exit) => resolve({ exit, stderr, pid: child.pid! })));
}

describe('ws --data local: a worker whose training images differ from the coordinator\'s', () => {
  it('is refused with DPT_ERR_DATA_MISMATCH, by itself or by the coordinator, while the healthy workers train on', async () => {
    const dir = tamperedMnistDir();
    const group = await wsGroupWithWorkers({ spec: NIELSEN, train, world: 2, maxBatch: 10, data: 'local' });
    open.push(group);
    const url = group.inner.url;
    let refused = false;
    let stepsAtRefusal = Infinity;
    // 20 more steps after both refusals: the coordinator goes on serving the healthy workers
    const training = trainUntil(group, train, () => refused && training.steps >= stepsAtRefusal + 20);
    await until('the first step', () => training.steps > 0);

    const liar = (async () => {
      const c = await HandClient.connect(url);
      const setup = await c.hello(TEST_TOKEN);
      c.send({ type: 'ready', layoutHash: setup!.envelope.layoutHash, dataDigest: '0'.repeat(64), kernels: 'js' });
      return c.refusal();
    })();
    const [lied, tampered] = await Promise.all([liar, workerProcess(url, dir)]);
    stepsAtRefusal = training.steps;
    refused = true;
    const { params, steps } = await training.done;

    // the coordinator's own check: a ready whose digest is not the coordinator's
    expect(lied).toEqual({
      code: 'DPT_ERR_DATA_MISMATCH', closeCode: ERROR_CODES.DPT_ERR_DATA_MISMATCH, closeReason: 'DPT_ERR_DATA_MISMATCH',
      message: 'the worker\'s training images differ from the coordinator\'s: point its --data-dir at the same MNIST files, or use --data ship',
    });
    expect(group.lines.some((l) => /^refused connection \d+ .*DPT_ERR_DATA_MISMATCH: the worker's training images differ/.test(l))).toBe(true);
    // the worker's own check, before it says ready: it names its folder and exits non-zero
    expect(tampered.exit).toBe(2);
    expect(tampered.stderr).toContain(`refusing the coordinator: DPT_ERR_DATA_MISMATCH: this worker's first ${train.count} training images (${dir}) differ from the coordinator's`);
    expect(group.lines.some((l) => l.includes(`pid ${tampered.pid}) refused the handshake: DPT_ERR_DATA_MISMATCH`))).toBe(true);

    // neither took a rank; the healthy workers were never lost and computed every shard
    expect(steps).toBeGreaterThanOrEqual(stepsAtRefusal + 20);
    expect(group.inner.joined).toBe(2);
    expect(group.inner.lostWorkers).toBe(0);
    expect(group.inner.reassignedShards).toBe(0);
    expect(training.badShardSteps).toEqual([]);
    const reference = await runSteps(new InProcessGroup(NIELSEN, createJsKernels(), train, 2, 10), replayPlan(train, steps));
    expect(maxAbsDiff(params, reference)).toBe(0);
    await group.close();
    expect(group.workers.children.every((c) => c.exitCode === 0)).toBe(true);
  });
});
