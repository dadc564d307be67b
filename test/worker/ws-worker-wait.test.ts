/**
 * A `dpt worker` started before its coordinator, as a real process on 127.0.0.1: it says once,
 * promptly, that it is waiting, why, and when it will give up; then that it connected.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnDpt } from '../helpers/cli.js';

const started: ChildProcess[] = [];
const servers: Server[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of servers) s.close();
});

const TOKEN = { DPT_TOKEN: 'wait-test-token' };
const SMALL = ['--epochs', '1', '--train-limit', '600', '--max-steps', '10', '--eval-set', 'validation', '--json'];
const WAITING = /^waiting for the coordinator at (\S+) \((.+)\); retrying until (\d\d):(\d\d):(\d\d) \(--connect-timeout (\d+)\), then giving up$/;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function within(ms: number, cond: () => boolean): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(20);
  }
  return true;
}

async function listen(onConnection?: (c: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

async function freePort(): Promise<number> {
  const { server, port } = await listen();
  await new Promise((r) => server.close(r));
  return port;
}

/** Seconds between a printed local HH:MM:SS and a moment, across midnight too. */
function secondsFrom(m: RegExpExecArray, at: number): number {
  const d = new Date(at);
  const printed = Number(m[3]) * 3600 + Number(m[4]) * 60 + Number(m[5]);
  const expected = d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds();
  const diff = Math.abs(printed - expected) % 86_400;
  return Math.min(diff, 86_400 - diff);
}

const waitingLines = (lines: string[]): string[] => lines.filter((l) => l.startsWith('waiting'));

describe('dpt worker before its coordinator', () => {
  it('says once, within a second, that the connection is refused and until when it retries; then that it connected', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const t0 = Date.now();
    const worker = spawnDpt(['worker', '--connect', url, '--connect-timeout', '30'], started, TOKEN);
    // ~0.4 s of it is node starting and loading dpt; generous for a loaded machine
    expect(await within(10_000, () => waitingLines(worker.err).length > 0), worker.err.join('\n')).toBe(true);
    const m = WAITING.exec(waitingLines(worker.err)[0]!);
    expect(m, worker.err[0]).not.toBeNull();
    expect(m![1]).toBe(url);
    expect(m![2]).toMatch(/connection refused/);
    expect(m![6]).toBe('30');
    expect(secondsFrom(m!, t0 + 30_000)).toBeLessThanOrEqual(10);
    // retries 100, 200, 400 and 800 ms apart have failed meanwhile, unannounced
    await sleep(1600);
    expect(waitingLines(worker.err)).toHaveLength(1);

    const coord = spawnDpt(['coordinator', '--listen', `127.0.0.1:${port}`, '--workers', '1', ...SMALL], started, TOKEN);
    expect(await coord.exit, coord.err.join('\n')).toBe(0);
    expect(await worker.exit, worker.err.join('\n')).toBe(0);
    expect(waitingLines(worker.err)).toHaveLength(1);
    expect(worker.err.join('\n')).toMatch(new RegExp(`^connected to ${url} after \\d+\\.\\d s$`, 'm'));
  });

  it('says it gets no answer from an address that accepts but never answers, and gives up at the deadline it named', async () => {
    const held: Socket[] = [];
    const { port } = await listen((c) => held.push(c));
    const url = `ws://127.0.0.1:${port}`;
    const t0 = Date.now();
    const worker = spawnDpt(['worker', '--connect', url, '--connect-timeout', '3'], started, TOKEN);
    expect(await within(10_000, () => waitingLines(worker.err).length > 0), worker.err.join('\n')).toBe(true);
    const m = WAITING.exec(waitingLines(worker.err)[0]!);
    expect(m![2]).toBe('no answer yet');
    expect(await worker.exit).toBe(2);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(waitingLines(worker.err)).toHaveLength(1);
    expect(worker.err.join('\n')).toMatch(new RegExp(`no coordinator at ${url} after 3 s \\(no answer\\)`));
    for (const c of held) c.destroy();
  });

  it('says nothing about waiting when the coordinator is already up', async () => {
    const coord = spawnDpt(['coordinator', '--listen', '127.0.0.1:0', '--workers', '1', ...SMALL], started, TOKEN);
    expect(await within(10_000, () => coord.err.some((l) => /listening on ws:\/\/\S+/.test(l)))).toBe(true);
    const url = /listening on (ws:\/\/[^\s,]+)/.exec(coord.err.join('\n'))![1]!;
    const worker = spawnDpt(['worker', '--connect', url], started, TOKEN);
    expect(await coord.exit, coord.err.join('\n')).toBe(0);
    expect(await worker.exit).toBe(0);
    expect(worker.err.join('\n')).not.toMatch(/waiting|connected to/);
  });
});
