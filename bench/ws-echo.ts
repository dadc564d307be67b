/**
 * The bare WebSocket floor, without any dpt code: N child processes connect to a ws server on
 * 127.0.0.1; every round the server sends each child `bytesOut` bytes and waits until every child
 * has answered with `bytesBack` bytes — the shape of a ws step (parameters out, gradient sums
 * back) with no decoding, no compute and no optimizer. Same ws options as dpt (no deflate;
 * workers send with a zero masking key). Used by bench/ws.ts to say what no design that ships
 * the parameters and gradients every step can go below on this machine.
 *
 *   node dist/bench/ws-echo.js [N] [bytesOut] [bytesBack]    (standalone: prints the median)
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { median, percentile } from '../src/profile/stats.js';

const CHILD = '--echo-child';

/** Median and 10th percentile round trip in ms over `rounds` rounds after `warmup`. */
export async function echoFloor(world: number, bytesOut: number, bytesBack: number, rounds = 1000, warmup = 200): Promise<{ medianMs: number; p10Ms: number }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: bytesBack + 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as { port: number }).port;
  const sockets: WebSocket[] = [];
  const joined = new Promise<void>((resolve) => wss.on('connection', (s) => { sockets.push(s); if (sockets.length === world) resolve(); }));
  const children = Array.from({ length: world }, () => fork(fileURLToPath(import.meta.url), [CHILD, `ws://127.0.0.1:${port}`, String(bytesBack)], { stdio: 'ignore' }));
  try {
    await joined;
    const payload = Buffer.alloc(bytesOut, 1);
    const times: number[] = [];
    for (let r = 0; r < warmup + rounds; r++) {
      const t0 = performance.now();
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => { s.once('message', () => resolve()); s.send(payload, { binary: true }); })));
      if (r >= warmup) times.push(performance.now() - t0);
    }
    return { medianMs: median(times), p10Ms: percentile(times, 10) };
  } finally {
    for (const c of children) c.kill();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}

function child(url: string, bytesBack: number): void {
  const reply = Buffer.alloc(bytesBack, 2);
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30, generateMask: (m: Buffer) => { m.fill(0); } });
  ws.on('message', () => ws.send(reply, { binary: true }));
  ws.on('close', () => process.exit(0));
  ws.on('error', () => process.exit(1));
}

if (process.argv[2] === CHILD) {
  child(process.argv[3]!, Number(process.argv[4]));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [n = '2', out = '95448', back = '95448'] = process.argv.slice(2);
  const f = await echoFloor(Number(n), Number(out), Number(back));
  console.log(`bare ws echo, ${n} processes, ${out} B out / ${back} B back: median ${(f.medianMs * 1000).toFixed(0)} us, p10 ${(f.p10Ms * 1000).toFixed(0)} us`);
}
