import { describe, expect, it } from 'vitest';
import { jsonReporter, textReporter } from '../../cli/report.js';

const epoch = { epoch: 3, steps: 5000, examples: 50_000, loss: 0.01234, testCorrect: 9401, testTotal: 10_000, trainSeconds: 12.31, evalSeconds: 0.2, samplesPerSecond: 4062 };

describe('the end-of-epoch line', () => {
  it('reports the examples the coordinator counted, in text and JSON', () => {
    const text: string[] = [];
    textReporter((l) => text.push(l)).epoch(epoch);
    expect(text).toEqual(['Epoch 3: 9401 / 10000  (94.01%)  loss 0.0123  50,000 examples  12.31 s  4,062 samples/s']);
    const json: string[] = [];
    jsonReporter((l) => json.push(l)).epoch(epoch);
    expect(JSON.parse(json[0]!)).toMatchObject({ event: 'epoch', examples: 50_000 });
  });
});
