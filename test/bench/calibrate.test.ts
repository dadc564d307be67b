import { describe, expect, it } from 'vitest';
import { reducePerFloatMs } from '../../bench/harness/calibrate.js';
import { createWasmKernels } from '../../src/tensor/kernels-wasm.js';

describe('reduce calibration', () => {
  it('times one float of the engine\'s addInto as the same additions timed directly', () => {
    const kernels = createWasmKernels();
    const n = 23_860; // the parameters of 784-30-10
    const y = kernels.alloc(n);
    const x = kernels.alloc(n);
    // the same additions, timed here: the fastest of several bursts of 200,000 floats (load only adds time)
    const direct = (): number => {
      const inner = Math.ceil(200_000 / n);
      const t0 = performance.now();
      for (let i = 0; i < inner; i++) kernels.addInto(y, x, n);
      return (performance.now() - t0) / inner / n;
    };
    const probed: number[] = [];
    const timed: number[] = [];
    for (let turn = 0; turn < 9; turn++) {
      probed.push(reducePerFloatMs(kernels, n, 3));
      timed.push(direct());
    }
    // per float, not per call (×23,860) or per burst (×9); the two timings take turns and load only
    // adds time, so the fastest of each agree within a factor of 2 on a loaded machine
    const ratio = Math.min(...probed) / Math.min(...timed);
    const why = `calibrated ${probed.join(', ')}, direct ${timed.join(', ')} ms per float`;
    expect(ratio, why).toBeLessThanOrEqual(2);
    expect(ratio, why).toBeGreaterThanOrEqual(0.5);
  });
});
