/**
 * The ws commands as users run them: real `dpt launch`, `dpt coordinator` and `dpt worker`
 * processes on 127.0.0.1. Checks what --workers counts (ranks: rank 0 on the coordinator unless
 * --average-only), results against in-process workers, and that no worker outlives its
 * coordinator (Ctrl-C is tested in ws-interrupt.test.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, spawnDpt, workerPids, type Run } from '../helpers/cli.js';
import { tempDir } from '../helpers/idx-fixtures.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const dpt = (args: string[], env: Record<string, string> = {}): Run => spawnDpt(args, started, env);

const SMALL = ['--epochs', '1', '--train-limit', '600', '--max-steps', '40', '--eval-set', 'validation', '--json'];


async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('dpt launch / coordinator / worker', () => {
  it('launch --workers 2 starts one worker process, rank 0 on the coordinator, and saves exactly the model of inproc x2; '
    + 'so do --average-only (two processes) and train --transport ws --data ship; no worker is left behind', async () => {
    const dir = tempDir();
    const run = (name: string, args: string[]) => ({ name, path: join(dir, `${name}.safetensors`), run: dpt([...args, ...SMALL, '--save', join(dir, `${name}.safetensors`)]) });
    const inproc = run('inproc', ['train', '--workers', '2']);
    const launched = run('launch', ['launch', '--workers', '2']);
    const averaging = run('average-only', ['launch', '--workers', '2', '--average-only']);
    const viaTrain = run('train-ship', ['train', '--transport', 'ws', '--workers', '2', '--data', 'ship']);
    for (const r of [inproc, launched, averaging, viaTrain]) expect(await r.run.exit, `${r.name}: ${r.run.err.join('\n')}`).toBe(0);
    // the processes started, by their output's [worker i] prefix (one refused for want of a rank would print too)
    const started = (r: typeof inproc) => [...new Set(r.run.err.flatMap((l) => /^\[worker (\d+)\] /.exec(l)?.slice(1) ?? []))].sort();
    expect(started(launched)).toEqual(['1']);
    expect(started(viaTrain)).toEqual(['1']);
    expect(started(averaging)).toEqual(['0', '1']);
    expect(workerPids(launched.run.err)).toHaveLength(1);
    expect(workerPids(averaging.run.err)).toHaveLength(2);
    // the one process holds rank 1; with --average-only the processes hold ranks 0 and 1
    expect(launched.run.err.some((l) => /^coordinator: worker 1 \(.*\) joined \(1\/1\)$/.test(l)), launched.run.err.join('\n')).toBe(true);
    // the same two shards summed in the same order, whoever computed them (and from indices or shipped pixels)
    for (const r of [launched, averaging, viaTrain]) expect(Buffer.compare(readFileSync(r.path), readFileSync(inproc.path)), `${r.name} against inproc x2`).toBe(0);
    for (const pid of [launched, averaging, viaTrain].flatMap((r) => workerPids(r.run.err))) expect(alive(pid)).toBe(false);
  });

  it('a worker started before its coordinator retries until it is up; a worker with a wrong token is refused with DPT_ERR_AUTH', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const early = dpt(['worker', '--connect', url], { DPT_TOKEN: 'shared-secret' });
    await new Promise((r) => setTimeout(r, 700));
    // three ranks, the coordinator's and two workers': the run cannot finish before the second honest worker, started after the intruder left
    const coord = dpt(['coordinator', '--listen', `127.0.0.1:${port}`, '--workers', '3', ...SMALL], { DPT_TOKEN: 'shared-secret' });
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

  it('a coordinator says how many workers it waits for, names how many arrived when the join times out, and prints a generated token', async () => {
    const coord = dpt(['coordinator', '--listen', '127.0.0.1:0', '--workers', '3', '--join-timeout', '1', ...SMALL], { DPT_TOKEN: '' });
    const averaging = dpt(['coordinator', '--listen', '127.0.0.1:0', '--workers', '3', '--average-only', '--join-timeout', '1', ...SMALL], { DPT_TOKEN: '' });
    expect(await coord.exit).toBe(2);
    expect(await averaging.exit).toBe(2);
    const text = coord.err.join('\n');
    expect(text).toMatch(/token \S{20,}/);
    expect(text).toMatch(/listening on ws:\/\/127\.0\.0\.1:\d+, waiting for 2 workers \(data local; it computes rank 0 of 3 itself\)/);
    expect(text).toMatch(/only 0 of 2 workers \(--workers 3: the coordinator computes rank 0\) joined ws:\/\/127\.0\.0\.1:\d+ within 1 s/);
    const alone = averaging.err.join('\n');
    expect(alone).toMatch(/waiting for 3 workers \(data local\)/);
    expect(alone).toMatch(/only 0 of 3 workers joined ws:\/\/127\.0\.0\.1:\d+ within 1 s/);
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
