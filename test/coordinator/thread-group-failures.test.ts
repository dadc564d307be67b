/**
 * The thread pool's edges: a thread that throws or dies fails the step with an error naming the
 * worker and the step and shuts the pool down; a closed pool leaves no thread that keeps the
 * process alive; batches smaller than the world and epochs ending in a partial batch still
 * reproduce single-node training. Real threads throughout (the compiled dist/ task).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { maxAbsDiff, runSteps, type StepsPlan } from '../../coordinator/equivalence.js';
import { InProcessGroup } from '../../coordinator/inproc-group.js';
import { ThreadGroup } from '../../coordinator/thread-group.js';
import { WorkerError } from '../../coordinator/worker-group.js';
import { slice } from '../../src/data/mnist.js';
import { NIELSEN, realMnist, seededNetwork } from '../helpers/fixtures.js';

const train = slice(realMnist().train, 0, 1009);

function stepRequest(step: number, indices: number[]) {
  const { params } = seededNetwork(NIELSEN, 3);
  return { step, params, indices: Uint32Array.from(indices) };
}

describe('threads: failures and shutdown', () => {
  // rank 1 on a pool thread, rank 0 on the coordinator's thread: the same error either way
  for (const [rank, indices] of [[1, [1, 2, 3, 5000]], [0, [5000, 2, 3, 4]]] as const) {
    it(`a worker that throws (rank ${rank}) fails the step with an error naming it and the step, and the pool shuts down`, async () => {
      const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 2, maxBatch: 10 });
      await group.computeStep(stepRequest(0, [1, 2, 3, 4]));
      // rank's shard holds an index past the end of the training set
      const failure = await group.computeStep(stepRequest(1, [...indices])).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(WorkerError);
      expect(failure).toMatchObject({ code: 'DPT_ERR_WORKER_FAILED', rank, step: 1 });
      expect((failure as Error).message).toMatch(new RegExp(`worker ${rank} failed at step 1: RangeError: gather: row 5000 is outside the 1009 images`));
      expect(group.liveThreads).toBe(0);
      await expect(group.computeStep(stepRequest(2, [1]))).rejects.toMatchObject({ code: 'DPT_ERR_GROUP_CLOSED' });
      await group.close(); // a second close is harmless
    });
  }

  it('a thread that dies fails the step with DPT_ERR_WORKER_EXITED naming the worker and the step', async () => {
    const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 3, maxBatch: 10, exitAt: { rank: 2, step: 4 } });
    for (let step = 0; step < 4; step++) await group.computeStep(stepRequest(step, [5, 6, 7, 8, 9, 10]));
    const failure = await group.computeStep(stepRequest(4, [5, 6, 7, 8, 9, 10])).catch((e: unknown) => e);
    expect(failure).toMatchObject({ name: 'WorkerError', code: 'DPT_ERR_WORKER_EXITED', rank: 2, step: 4 });
    expect((failure as Error).message).toMatch(/worker 2 failed at step 4: its thread died \(.*code: 70\)/);
    expect(group.liveThreads).toBe(0);
  });

  it('rejects a batch larger than the group was sized for', async () => {
    const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train, world: 2, maxBatch: 4 });
    try {
      await expect(group.computeStep(stepRequest(0, [1, 2, 3, 4, 5]))).rejects.toThrow(/batch of 5 examples exceeds the thread group's maxBatch of 4/);
    } finally {
      await group.close();
    }
  });

  // A separate Node process counts its own OS threads (/proc/self/task, Linux): one more while
  // the pool of a 2-worker group runs (rank 0 runs on the coordinator's thread), and back to the count before the pool once it has closed (also when a failed
  // step closed it). piscina unrefs its threads, so "the process exits" alone would prove nothing.
  for (const scenario of ['after training steps', 'after a failed step'] as const) {
    it(`close leaves no worker thread running (${scenario})`, async () => {
      const dist = (p: string) => JSON.stringify(fileURLToPath(new URL(`../../dist/${p}`, import.meta.url)));
      const script = `
        import { readdirSync } from 'node:fs';
        import { ThreadGroup } from ${dist('coordinator/thread-group.js')};
        import { loadMnist, slice } from ${dist('src/data/mnist.js')};
        const osThreads = () => readdirSync('/proc/self/task').length;
        const train = slice(loadMnist().train, 0, 100);
        const spec = { sizes: [784, 30, 10], activation: 'sigmoid', cost: 'quadratic' };
        const params = new Float32Array(784 * 30 + 30 + 30 * 10 + 10);
        const before = osThreads();
        const group = await ThreadGroup.start({ spec, kernels: 'js', train, world: 2, maxBatch: 10 });
        await group.computeStep({ step: 0, params, indices: Uint32Array.from([1, 2, 3]) });
        const during = osThreads() - before;
        ${scenario === 'after a failed step'
          ? `await group.computeStep({ step: 1, params, indices: Uint32Array.from([1, 2, 999]) }).catch((e) => console.log(e.code));`
          : `await group.close(); console.log('closed');`}
        // a terminated thread leaves the OS thread list shortly after destroy() resolves
        for (let i = 0; i < 100 && osThreads() > before; i++) await new Promise((r) => setTimeout(r, 50));
        console.log('extra threads while running', during, 'after close', osThreads() - before, 'in pool', group.liveThreads);
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      const code = await new Promise<number | string>((resolve) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); resolve('still running after 20 s'); }, 20_000);
        child.on('exit', (c) => { clearTimeout(timer); resolve(c ?? -1); });
      });
      expect({ code, err }).toEqual({ code: 0, err: '' });
      expect(out).toBe(`${scenario === 'after a failed step' ? 'DPT_ERR_WORKER_FAILED' : 'closed'}\nextra threads while running 1 after close 0 in pool 0\n`);
    });
  }
});

describe('threads: uneven batches', () => {
  const plan = (batch: number, steps: number, set = train): StepsPlan => {
    const { network, params } = seededNetwork(NIELSEN, 11);
    return { network, initialParams: params, train: set, batch, steps, orderSeed: 9, shuffle: true, sgd: { eta: 3, momentum: 0, weightDecay: 0 } };
  };

  async function compare(p: StepsPlan, world: number): Promise<number> {
    const reference = await runSteps(new InProcessGroup(NIELSEN, p.network.kernels, p.train, 1, p.batch), p);
    const group = await ThreadGroup.start({ spec: NIELSEN, kernels: 'js', train: p.train, world, maxBatch: p.batch });
    try {
      const distributed = await runSteps(group, p);
      expect(maxAbsDiff(reference, p.initialParams)).toBeGreaterThan(1e-3);
      return maxAbsDiff(reference, distributed);
    } finally {
      await group.close();
    }
  }

  it('a global batch smaller than the world (rank 3 of 4 gets an empty shard) matches single-node', async () => {
    expect(await compare(plan(3, 20), 4)).toBeLessThanOrEqual(1e-5);
  });

  it('epochs of 23 examples at batch 10 end in a partial batch of 3, smaller than the world, and still match', async () => {
    // 3 steps per epoch (10, 10, 3); 12 steps cross four epoch boundaries and reshuffle each time
    expect(await compare(plan(10, 12, slice(train, 0, 23)), 4)).toBeLessThanOrEqual(1e-5);
  });
});
