/**
 * Test helper: a WsGroup on 127.0.0.1 (ephemeral port) with N real worker processes started from
 * the compiled CLI (dist/cli/dpt.js worker), stopped when the group closes.
 */
import { LocalWorkers } from '../../coordinator/launch.js';
import { WsGroup } from '../../coordinator/ws-group.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import type { DataMode, WireFormat } from '../../src/config.js';
import type { LabelledImages } from '../../src/data/idx.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import type { Kernels } from '../../src/tensor/kernels.js';

export const TEST_TOKEN = 'test-token-not-secret';

export interface WsTestGroup extends WorkerGroup {
  inner: WsGroup;
  workers: LocalWorkers;
  lines: string[];
}

export async function wsGroupWithWorkers(a: { spec: NetworkSpec; train: LabelledImages; world: number; maxBatch: number; data: DataMode; wire?: WireFormat; processes?: number; waitFor?: number; minWorkers?: number; stepTimeoutMs?: number; coordinatorKernels?: Kernels }): Promise<WsTestGroup> {
  const lines: string[] = [];
  const group = await WsGroup.listen({
    spec: a.spec, train: a.train, world: a.world, maxBatch: a.maxBatch, kernels: 'js', data: a.data, wire: a.wire, token: TEST_TOKEN,
    minWorkers: a.minWorkers, stepTimeoutMs: a.stepTimeoutMs, coordinatorKernels: a.coordinatorKernels,
    log: (l) => lines.push(l),
  });
  const workers = new LocalWorkers(a.processes ?? a.world, group.url, TEST_TOKEN, {
    dataDir: null, log: (l) => lines.push(l), onEarlyExit: (e) => group.abortWait(e),
  });
  try {
    await group.waitForWorkers(30_000, a.waitFor);
  } catch (e) {
    await group.close();
    await workers.stop(500);
    throw new Error(`${(e as Error).message}\n${lines.join('\n')}`);
  }
  return {
    transport: 'ws', world: group.world, inner: group, workers, lines,
    computeStep: (req) => group.computeStep(req),
    close: async () => {
      await group.close();
      await workers.stop();
    },
  };
}
