/**
 * The handshake deadline: a connection that does not finish the handshake within
 * handshakeTimeoutMs (stalled before hello, or after setup without ready) is refused with
 * DPT_ERR_WORKER_TIMEOUT, so a stalled peer cannot hold one of the handshake slots for good; a
 * worker that finished the handshake in time is not touched by it.
 */
import { describe, expect, it, vi } from 'vitest';
import { WsGroup } from '../../coordinator/ws-group.js';
import { HANDSHAKE_TIMEOUT_MS, WsServer } from '../../coordinator/ws-server.js';
import { slice } from '../../src/data/mnist.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { NIELSEN, realMnist } from '../helpers/fixtures.js';
import { HandClient } from './ws-hand-client.js';
import { TEST_TOKEN } from './ws-workers.js';

const train = slice(realMnist().train, 0, 100);
const DEADLINE_MS = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The promise's value, or a failure naming `what` after ms. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe('ws handshake deadline', () => {
  it(`refuses a connection that stalls before hello, and one that stalls before ready, with DPT_ERR_WORKER_TIMEOUT after handshakeTimeoutMs; a joined worker stays`, async () => {
    const lines: string[] = [];
    const group = await WsGroup.listen({
      spec: NIELSEN, train, world: 1, maxBatch: 10, kernels: 'js', data: 'local', token: TEST_TOKEN,
      handshakeTimeoutMs: DEADLINE_MS, log: (l) => lines.push(l),
    });
    try {
      const t0 = performance.now();
      const silent = await HandClient.connect(group.url);
      await silent.expect('challenge'); // and never says hello
      const halfway = await HandClient.connect(group.url);
      const setup = await halfway.hello(TEST_TOKEN); // and never says ready
      expect(setup?.envelope.type).toBe('setup');
      const joined = await HandClient.connect(group.url);
      const joinedSetup = await joined.hello(TEST_TOKEN);
      joined.send({ type: 'ready', layoutHash: joinedSetup!.envelope.layoutHash, dataDigest: joinedSetup!.envelope.dataDigest, kernels: 'js' });
      await group.waitForWorkers(5000);

      // by the deadline, not by something much later (the heartbeat is 10 s)
      const refusals = await within(DEADLINE_MS + 2000, 'closing the stalled handshakes', Promise.all([silent.refusal(), halfway.refusal()]));
      const elapsed = performance.now() - t0;
      const timedOut = { code: 'DPT_ERR_WORKER_TIMEOUT', message: `no complete handshake within ${DEADLINE_MS} ms`, closeCode: ERROR_CODES.DPT_ERR_WORKER_TIMEOUT, closeReason: 'DPT_ERR_WORKER_TIMEOUT' };
      expect(refusals).toEqual([timedOut, timedOut]);
      expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS);
      expect(lines.filter((l) => l.includes(`DPT_ERR_WORKER_TIMEOUT: no complete handshake within ${DEADLINE_MS} ms`))).toHaveLength(2);

      // the worker that sent ready in time keeps its rank past its own deadline
      await sleep(DEADLINE_MS);
      expect(joined.socket.readyState).toBe(joined.socket.OPEN);
      expect(group.joined).toBe(1);
      expect(group.connectionCount).toBe(1);
      joined.close();
    } finally {
      await group.close();
    }
  });

  it('gives a connection HANDSHAKE_TIMEOUT_MS (30 s, as docs/protocol.md says) when handshakeTimeoutMs is not given', async () => {
    expect(HANDSHAKE_TIMEOUT_MS).toBe(30_000);
    const listen = vi.spyOn(WsServer, 'listen');
    try {
      const group = await WsGroup.listen({ spec: NIELSEN, train, world: 1, maxBatch: 10, kernels: 'js', data: 'local', token: TEST_TOKEN });
      await group.close();
      expect(listen).toHaveBeenCalledTimes(1);
      expect(listen.mock.calls[0]![2].handshakeTimeoutMs).toBe(HANDSHAKE_TIMEOUT_MS);
    } finally {
      listen.mockRestore();
    }
  });
});
