/**
 * Test helper: a WsGroup on 127.0.0.1 (ephemeral port) with N real worker processes started from
 * the compiled CLI (dist/cli/dpt.js worker), stopped when the group closes. With coordinatorRank
 * the coordinator computes rank 0 itself (CoordinatorRankGroup) and world - 1 processes are started.
 */
import { CoordinatorRankGroup } from '../../coordinator/coordinator-rank.js';
import { LocalWorkers } from '../../coordinator/launch.js';
import { WsGroup, type WsGroupOptions } from '../../coordinator/ws-group.js';
import type { WorkerGroup } from '../../coordinator/worker-group.js';
import type { DataMode, WireFormat } from '../../src/config.js';
import type { LabelledImages } from '../../src/data/idx.js';
import type { NetworkSpec } from '../../src/model/spec.js';
import { createJsKernels } from '../../src/tensor/kernels-js.js';
import type { Kernels } from '../../src/tensor/kernels.js';

export const TEST_TOKEN = 'test-token-not-secret';

export interface WsTestGroup extends WorkerGroup {
  /** the WebSocket group of the worker ranks */
  inner: WsGroup;
  workers: LocalWorkers;
  lines: string[];
}

export async function wsGroupWithWorkers(a: {
  spec: NetworkSpec; train: LabelledImages; world: number; maxBatch: number; data: DataMode; wire?: WireFormat; processes?: number; waitFor?: number;
  minWorkers?: number; stepTimeoutMs?: number; coordinatorKernels?: Kernels; coordinatorRank?: boolean;
}): Promise<WsTestGroup> {
  const lines: string[] = [];
  const options: WsGroupOptions = {
    spec: a.spec, train: a.train, world: a.world, maxBatch: a.maxBatch, kernels: 'js', data: a.data, wire: a.wire, token: TEST_TOKEN,
    minWorkers: a.minWorkers, stepTimeoutMs: a.stepTimeoutMs, coordinatorKernels: a.coordinatorKernels,
    log: (l) => lines.push(l),
  };
  // rank 0 computes with the engine the workers load ('js'), or the coordinator's when one is given
  const outer = a.coordinatorRank ? await CoordinatorRankGroup.listen(options, a.coordinatorKernels ?? createJsKernels()) : await WsGroup.listen(options);
  const group = outer instanceof CoordinatorRankGroup ? outer.workers : outer;
  const workers = new LocalWorkers(a.processes ?? group.workerRanks, group.url, TEST_TOKEN, {
    dataDir: null, firstIndex: group.firstRank, log: (l) => lines.push(l), onEarlyExit: (e) => group.abortWait(e),
  });
  try {
    await group.waitForWorkers(30_000, a.waitFor);
  } catch (e) {
    await outer.close();
    await workers.stop(500);
    throw new Error(`${(e as Error).message}\n${lines.join('\n')}`);
  }
  return {
    transport: 'ws', world: outer.world, coordinatorComputes: outer instanceof CoordinatorRankGroup, inner: group, workers, lines,
    computeStep: (req) => outer.computeStep(req),
    close: async () => {
      await outer.close();
      await workers.stop();
    },
  };
}
