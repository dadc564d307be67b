/**
 * The ws commands as users run them: real `dpt launch`, `dpt coordinator` and `dpt worker`
 * processes on 127.0.0.1. Checks results against single-node and that no worker outlives its
 * coordinator (Ctrl-C is tested in ws-interrupt.test.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, spawnDpt, workerPids, type Run } from '../helpers/cli.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const dpt = (args: string[], env: Record<string, string> = {}): Run => spawnDpt(args, started, env);

const SMALL = ['--epochs', '1', '--train-limit', '600', '--max-steps', '40', '--eval-set', 'validation', '--json'];

function accuracy(lines: string[]): number {
  const epoch = lines.map((l) => JSON.parse(l) as { event?: string; testCorrect?: number }).find((o) => o.testCorrect !== undefined);
  if (!epoch) throw new Error(`no epoch line in ${lines.join('\n')}`);
  return epoch.testCorrect!;
}


async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('dpt launch / coordinator / worker', () => {
  it('launch --workers 2 and train --transport ws --data ship end at the single-node accuracy and leave no worker behind', async () => {
    const single = dpt(['train', ...SMALL]);
    const launched = dpt(['launch', '--workers', '2', ...SMALL]);
    const viaTrain = dpt(['train', '--transport', 'ws', '--workers', '2', '--data', 'ship', ...SMALL]);
    expect(await single.exit).toBe(0);
    expect(await launched.exit).toBe(0);
    expect(await viaTrain.exit).toBe(0);
    // the two data modes do the same arithmetic, bit for bit; single-node adds the batch in one
    // sum instead of two, so a prediction on a near-tie may flip (parameters agree to ~1e-7)
    expect(accuracy(viaTrain.out)).toBe(accuracy(launched.out));
    expect(Math.abs(accuracy(launched.out) - accuracy(single.out))).toBeLessThanOrEqual(3);
    const pids = [...workerPids(launched.err), ...workerPids(viaTrain.err)];
    expect(pids).toHaveLength(4);
    expect(launched.err.some((l) => l.startsWith('[worker 0] '))).toBe(true);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('a worker started before its coordinator retries until it is up; a worker with a wrong token is refused with DPT_ERR_AUTH', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const early = dpt(['worker', '--connect', url], { DPT_TOKEN: 'shared-secret' });
    await new Promise((r) => setTimeout(r, 700));
    // two ranks: the run cannot finish before the second honest worker, started after the intruder left
    const coord = dpt(['coordinator', '--listen', `127.0.0.1:${port}`, '--workers', '2', ...SMALL], { DPT_TOKEN: 'shared-secret' });
    while (!coord.err.some((l) => l.includes('listening on'))) await new Promise((r) => setTimeout(r, 20));
    const intruder = dpt(['worker', '--connect', url], { DPT_TOKEN: 'wrong-secret' });
    expect(await intruder.exit).toBe(2);
    expect(intruder.err.join('\n')).toMatch(/DPT_ERR_AUTH/);
    const late = dpt(['worker', '--connect', url], { DPT_TOKEN: 'shared-secret' });
    expect(await coord.exit).toBe(0);
    expect(await early.exit).toBe(0);
    expect(await late.exit).toBe(0);
    expect(coord.err.join('\n')).toMatch(/refused .*DPT_ERR_AUTH/);
    expect(coord.err.join('\n')).not.toMatch(/shared-secret/); // a given token is never printed
  });

  it('a coordinator names how many workers arrived when the join times out, and prints a generated token', async () => {
    const coord = dpt(['coordinator', '--listen', '127.0.0.1:0', '--workers', '2', '--join-timeout', '1', ...SMALL], { DPT_TOKEN: '' });
    expect(await coord.exit).toBe(2);
    const text = coord.err.join('\n');
    expect(text).toMatch(/token \S{20,}/);
    expect(text).toMatch(/only 0 of 2 workers joined ws:\/\/127\.0\.0\.1:\d+ within 1 s/);
  });

  it('a worker without a token, or with a URL that is not ws://, says how to fix it', async () => {
    const noToken = dpt(['worker', '--connect', 'ws://127.0.0.1:9'], { DPT_TOKEN: '' });
    expect(await noToken.exit).toBe(2);
    expect(noToken.err.join('\n')).toMatch(/no token: pass .* --token or DPT_TOKEN/);
    const badUrl = dpt(['worker', '--connect', 'http://x'], { DPT_TOKEN: 't' });
    expect(await badUrl.exit).toBe(2);
    expect(badUrl.err.join('\n')).toMatch(/--connect must be a ws:\/\/ URL/);
    const nobody = dpt(['worker', '--connect', 'ws://127.0.0.1:9', '--connect-timeout', '1'], { DPT_TOKEN: 't' });
    expect(await nobody.exit).toBe(2);
    expect(nobody.err.join('\n')).toMatch(/no coordinator at ws:\/\/127\.0\.0\.1:9 after 1 s/);
  });
});
