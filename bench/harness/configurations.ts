/**
 * The configurations `dpt bench` measures: how the workers run, how many, and how often their
 * parameters are averaged (--average-every K, local SGD), and for ws the wire format. Every
 * transport crosses every worker count and every K; one worker runs once, at K = 1, since one
 * rank has nothing to average and any K would repeat it; ws crosses every --wire format too. The
 * single-node baseline, inproc x1, always comes first.
 */
import type { BenchConfig, TrainConfig, TransportName, WireFormat } from '../../src/config.js';

/** The part of a cell's TrainConfig its configuration sets (net and batch come from the grid). */
export type BenchConfiguration = Pick<TrainConfig, 'transport' | 'workers' | 'averageEvery' | 'localSgdAfter' | 'averageOptimizerState' | 'wire'>;

const BASELINE: TransportName = 'inproc';

export function benchConfigurations(c: Pick<BenchConfig, 'transports' | 'workers' | 'averageEvery' | 'localSgdAfter' | 'averageOptimizerState'> & { wire?: WireFormat[] }): BenchConfiguration[] {
  const grid: BenchConfiguration[] = [perStep(BASELINE, 1, 'fp32')];
  for (const transport of c.transports) {
    for (const workers of c.workers) {
      for (const k of workers === 1 ? [1] : c.averageEvery) {
        if (transport === BASELINE && workers === 1) continue;
        for (const wire of transport === 'ws' ? c.wire ?? ['fp32'] : ['fp32' as const]) {
          // the local SGD settings belong to K > 1 only: with K = 1 they would change nothing
          grid.push(k === 1 ? perStep(transport, workers, wire)
            : { transport, workers, averageEvery: k, localSgdAfter: c.localSgdAfter, averageOptimizerState: c.averageOptimizerState, wire });
        }
      }
    }
  }
  return grid;
}

function perStep(transport: TransportName, workers: number, wire: WireFormat): BenchConfiguration {
  return { transport, workers, averageEvery: 1, localSgdAfter: 0, averageOptimizerState: false, wire };
}

/** What tells two configurations apart, for the maps that collect their runs. */
export const configurationKey = (c: Pick<BenchConfiguration, 'transport' | 'workers' | 'averageEvery'> & { wire?: WireFormat }): string =>
  `${c.transport}|${c.workers}|${c.averageEvery}|${c.wire ?? 'fp32'}`;

/** The TrainConfig one cell trains with: the bench's shared settings, its configuration's, its batch and length. */
export function cellConfig(base: TrainConfig, configuration: BenchConfiguration, batch: number, epochs: number, maxSteps: number | null): TrainConfig {
  return { ...base, ...configuration, batch, epochs, maxSteps };
}
