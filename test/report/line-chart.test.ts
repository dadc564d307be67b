import { describe, expect, it } from 'vitest';
import { lineChart } from '../../src/profile/svg.js';

describe('lineChart', () => {
  it('draws a curve of 300,000 points (a 40-epoch run at batch 10) as a path of at most a few thousand, ends kept', () => {
    const points = Array.from({ length: 300_000 }, (_, i) => [i / 1000, 1 + Math.sin(i / 5000)] as [number, number]);
    const svg = lineChart([{ name: 'inproc x1', color: '#000', points }], { xLabel: 'training time (s)', yLabel: 'loss' });
    const path = /<polyline[^>]*points="([^"]+)"|<path[^>]*d="([^"]+)"/.exec(svg);
    expect(path).not.toBeNull();
    const drawn = (path![1] ?? path![2]!).trim().split(/\s+|L/).filter(Boolean).length;
    expect(drawn).toBeGreaterThan(100);
    expect(drawn).toBeLessThanOrEqual(2002);
    // the x axis spans the whole run: its ticks reach 250 s
    expect(svg).toMatch(/>250</);
  });
});
