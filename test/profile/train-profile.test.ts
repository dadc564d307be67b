import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainCommand } from '../../cli/train.js';
import { DEFAULTS, type TrainConfig } from '../../src/config.js';
import { STEP_PHASES } from '../../src/profile/phases.js';

const dir = mkdtempSync(join(tmpdir(), 'dpt-train-profile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (o: Partial<TrainConfig>): TrainConfig => ({
  ...DEFAULTS, kernels: 'js', trainLimit: 300, epochs: 1, maxSteps: 30, workers: 2, burnIn: 5, evalSet: 'validation', ...o,
});

describe('dpt train --profile --trace', () => {
  it('prints the per-phase and per-worker tables and writes the trace', async () => {
    const trace = join(dir, 'steps.json');
    const lines: string[] = [];
    await trainCommand(config({ profile: true, trace }), (l) => lines.push(l));
    const text = lines.join('\n');
    expect(text).toMatch(/Profile: 25 steps measured after 5 burn-in steps, 2 workers/);
    for (const phase of STEP_PHASES) expect(text).toMatch(new RegExp(`^${phase}\\s+\\S+`, 'm'));
    expect(text).toMatch(/^rank\s+load\s+communication\s+compute\s+wait\s+update/m);
    expect(text).toMatch(/^Straggler: /m);
    const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string }[] }).traceEvents;
    expect(events.filter((e) => e.name === 'COMPUTE')).toHaveLength(60);
  });

  it('--json prints the profile as one JSON line', async () => {
    const lines: string[] = [];
    await trainCommand(config({ profile: true, json: true, workers: 1 }), (l) => lines.push(l));
    const profile = lines.map((l) => JSON.parse(l) as { event: string; steps?: number; phases?: unknown[] }).find((o) => o.event === 'profile')!;
    expect(profile.steps).toBe(25);
    expect(profile.phases).toHaveLength(STEP_PHASES.length);
  });

  it('says so when every step was burn-in', async () => {
    const lines: string[] = [];
    await trainCommand(config({ profile: true, maxSteps: 4 }), (l) => lines.push(l));
    expect(lines.join('\n')).toMatch(/only 4 steps ran, all within the 5 burn-in steps; lower --burn-in or run more steps/);
  });
});
