/**
 * The coordinator's WebSocket server and the worker handshake:
 *
 *   server → challenge {version, nonce}
 *   worker → hello {version, proof = HMAC(token, worker/nonce), its own nonce}
 *   server → setup {proof = HMAC(token, coordinator/its nonce), spec, layout hash, max shard,
 *                   kernels, data mode, training-set size and digest, maxPayload, wire format}
 *   worker → ready {layout hash and data digest as the worker computed them}
 *
 * Each check failing refuses that one connection with its code (version, auth, layout, data) and
 * the server goes on. Frames after `ready` go to the group. permessage-deflate is off (float
 * tensors do not compress and zlib costs ~11 ms per 95 KB), maxPayload comes from the layout, a
 * ping every heartbeatMs finds dead peers (3 unanswered in a row), and every socket has an error handler.
 * With TLS (--tls-cert, --tls-key) the same server runs on node:https and the URL is wss://; the
 * handshake above is unchanged, so the token still decides who may join.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { newNonce, proofFor, verifyProof } from '../src/protocol/auth.js';
import { decodeFrame, type DecodedFrame } from '../src/protocol/codec.js';
import { ProtocolError, errorCodeForClose } from '../src/protocol/errors.js';
import { PROTOCOL_VERSION, parseError, parseHello, parseReady, type SetupMsg } from '../src/protocol/messages.js';
import type { ServerTls } from '../src/protocol/tls-files.js';
import { WorkerConnection } from './ws-connection.js';

/** What a worker must agree to before it gets work: the setup message's terms, and the token behind its proof. */
export type HandshakeTerms = Omit<SetupMsg, 'type' | 'version' | 'proof'> & { token: string };

export interface ServerEvents {
  /** a connection passed the handshake */
  onReady(conn: WorkerConnection): void;
  /** a frame from a connection that passed the handshake */
  onFrame(conn: WorkerConnection, frame: DecodedFrame): void;
  /** a connection closed, for whatever reason (conn.error says which) */
  onClosed(conn: WorkerConnection): void;
  log(line: string): void;
}

const MISSED_PONGS = 3;
/**
 * Connections that have not finished the handshake at once. Beyond this a new connection is
 * closed at once (1013 try again later), so a flood of junk connections costs a bounded amount
 * of memory and never touches the workers that hold ranks.
 */
export const MAX_PENDING_HANDSHAKES = 16;
/**
 * How long a connection may take from its challenge to its ready (default of handshakeTimeoutMs):
 * long enough for a worker that loads MNIST and builds its engine on a slow machine, short enough
 * that a connection which stalls in the handshake frees its slot.
 */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

export interface ServerOptions {
  host: string;
  port: number;
  heartbeatMs: number;
  handshakeTimeoutMs: number;
  maxPendingHandshakes: number;
  /** serve wss:// with this certificate and key; null: plain ws:// */
  tls: ServerTls | null;
}

export class WsServer {
  readonly connections = new Set<WorkerConnection>();
  private nextId = 0;
  /** connections turned away because too many were in the handshake */
  turnedAway = 0;
  /** TLS handshakes that failed (most often a worker that does not trust the certificate) */
  tlsFailures = 0;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  private constructor(private readonly http: Server, private readonly wss: WebSocketServer, readonly host: string, readonly port: number,
    private readonly terms: HandshakeTerms, private readonly events: ServerEvents, private readonly opts: ServerOptions) {
    wss.on('connection', (socket, req) => this.accept(socket, req));
    wss.on('error', (e) => events.log(`server error: ${e.message}`));
    // A worker that does not trust the certificate hangs up in the TLS handshake (it says why);
    // here the operator sees that someone tried (1, 10, 100, ...: a scanner must not flood the log).
    http.on('tlsClientError', (e: NodeJS.ErrnoException, socket: { remoteAddress?: string; remotePort?: number }) => {
      this.tlsFailures++;
      if (!Number.isInteger(Math.log10(this.tlsFailures))) return;
      const peer = socket.remoteAddress ? ` with ${socket.remoteAddress}:${socket.remotePort}` : '';
      const why = e.code === 'ERR_SSL_HTTP_REQUEST' ? 'plain ws:// on this TLS port: workers connect with wss://'
        : `${e.message}: a worker that does not trust the certificate ends it so, and needs --ca FILE`;
      events.log(`TLS handshake${peer} failed (${this.tlsFailures} so far): ${why}`);
    });
    // A worker that leaves MISSED_PONGS pings in a row unanswered is gone (its TCP connection
    // may never report it: a pulled cable sends no FIN). Not one: a worker answers pings only
    // between shards, and a big shard on slow kernels can take seconds.
    this.heartbeat = setInterval(() => {
      for (const c of this.connections) {
        if (c.missedPongs >= MISSED_PONGS) {
          c.terminate('DPT_ERR_WORKER_TIMEOUT', `${c.label} answered none of ${MISSED_PONGS} pings sent ${opts.heartbeatMs} ms apart`);
          continue;
        }
        c.missedPongs++;
        c.socket.ping();
      }
    }, opts.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Listens on host:port (port 0 picks a free one; read it back from .port). */
  static listen(terms: HandshakeTerms, events: ServerEvents, opts: ServerOptions): Promise<WsServer> {
    return new Promise((resolve, reject) => {
      // Our own server (not ws's) so that it can be https; a plain request gets what ws would answer.
      const upgradeRequired = (_req: IncomingMessage, res: ServerResponse): void => {
        res.writeHead(426, { 'Content-Type': 'text/plain' }).end('Upgrade Required');
      };
      const http: Server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, upgradeRequired) : createHttpServer(upgradeRequired);
      const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: terms.maxPayload, clientTracking: false });
      const onError = (e: NodeJS.ErrnoException): void => {
        wss.close();
        http.close();
        const hint = e.code === 'EADDRINUSE' ? ': the port is taken; pick another with --listen HOST:PORT (port 0 picks a free one)'
          : e.code === 'EADDRNOTAVAIL' ? ': this machine has no such address; use 127.0.0.1 or one of its interfaces' : '';
        reject(new ProtocolError('DPT_ERR_PROTOCOL', `cannot listen on ${opts.host}:${opts.port} (${e.message})${hint}`));
      };
      // ws passes the server's 'error' and 'listening' on to wss
      wss.once('error', onError);
      wss.once('listening', () => {
        wss.off('error', onError);
        const addr = http.address() as AddressInfo;
        resolve(new WsServer(http, wss, opts.host, addr.port, terms, events, opts));
      });
      http.listen(opts.port, opts.host);
    });
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.opts.tls ? 'wss' : 'ws'}://${host}:${this.port}`;
  }

  private accept(socket: WebSocket, req: IncomingMessage): void {
    const peer = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    if (this.closed) {
      socket.close(1001, 'shutting down');
      return;
    }
    let pending = 0;
    for (const c of this.connections) if (c.state === 'challenged' || c.state === 'setup-sent') pending++;
    if (pending >= this.opts.maxPendingHandshakes) {
      socket.on('error', () => {});
      socket.close(1013, 'too many connections in the handshake');
      this.turnedAway++;
      // 1, 10, 100, ...: a flood must not flood the log too
      if (Number.isInteger(Math.log10(this.turnedAway))) {
        this.events.log(`turned away ${peer}: ${pending} connections are already in the handshake (limit ${this.opts.maxPendingHandshakes}; ${this.turnedAway} turned away so far)`);
      }
      return;
    }
    const conn = new WorkerConnection(this.nextId++, socket, peer, newNonce());
    this.connections.add(conn);
    socket.on('error', (e: Error & { code?: string }) => {
      // ws emits this for protocol violations it detects itself (then closes the socket);
      // a frame over maxPayload is the one with its own code.
      const code = e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'DPT_ERR_TOO_LARGE' : 'DPT_ERR_BAD_FRAME';
      const hint = code === 'DPT_ERR_TOO_LARGE' ? ` (limit ${this.terms.maxPayload} bytes, from the parameter layout)` : '';
      conn.markClosed(new ProtocolError(code, `${conn.label}: ${e.message}${hint}`));
    });
    socket.on('pong', () => {
      conn.missedPongs = 0;
    });
    socket.on('message', (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    socket.on('close', (code: number, reason: Buffer) => {
      const known = errorCodeForClose(code);
      conn.markClosed(new ProtocolError(known ?? 'DPT_ERR_WORKER_LOST',
        `${conn.label} closed the connection (close code ${code}${reason.length ? ` ${reason.toString()}` : ''})`));
      this.connections.delete(conn);
      this.events.onClosed(conn);
    });
    conn.handshakeTimer = setTimeout(() => {
      const e = new ProtocolError('DPT_ERR_WORKER_TIMEOUT', `no complete handshake within ${this.opts.handshakeTimeoutMs} ms`);
      this.events.log(`refused ${conn.label}: ${e.message}`);
      conn.fail(e);
    }, this.opts.handshakeTimeoutMs);
    conn.sendMessage({ type: 'challenge', version: PROTOCOL_VERSION, nonce: conn.nonce });
  }

  private onMessage(conn: WorkerConnection, data: RawData, isBinary: boolean): void {
    if (conn.state === 'closed') return;
    try {
      if (!isBinary || !Buffer.isBuffer(data)) throw new ProtocolError('DPT_ERR_BAD_FRAME', 'dpt frames are binary; got a text frame');
      const frame = decodeFrame(data);
      if (frame.envelope.type === 'error') {
        const m = parseError(frame);
        // a rank holder's leaving is logged by the group; one still in the handshake only here
        if (conn.state !== 'ready') this.events.log(`${conn.label} refused the handshake: ${m.code}: ${m.message}`);
        conn.markClosed(new ProtocolError(m.code, `${conn.label} reported: ${m.message}`));
        conn.socket.close(1000);
        return;
      }
      switch (conn.state) {
        case 'challenged': return this.onHello(conn, frame);
        case 'setup-sent': return this.onReady(conn, frame);
        case 'ready': return this.events.onFrame(conn, frame);
      }
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.events.log(`refused ${conn.label}: ${e.message}`);
      conn.fail(e);
    }
  }

  private onHello(conn: WorkerConnection, frame: DecodedFrame): void {
    const hello = parseHello(frame);
    conn.host = hello.host;
    conn.pid = hello.pid;
    if (!verifyProof(this.terms.token, 'worker', conn.nonce, hello.proof)) {
      throw new ProtocolError('DPT_ERR_AUTH', 'the worker does not know the shared token: pass the coordinator\'s token with --token or DPT_TOKEN');
    }
    const t = this.terms;
    conn.sendMessage({
      type: 'setup', version: PROTOCOL_VERSION, proof: proofFor(t.token, 'coordinator', hello.nonce), spec: t.spec,
      layoutHash: t.layoutHash, layoutSize: t.layoutSize, maxShard: t.maxShard, kernels: t.kernels, data: t.data,
      trainCount: t.trainCount, dataDigest: t.dataDigest, maxPayload: t.maxPayload, wire: t.wire,
    });
    conn.state = 'setup-sent';
  }

  private onReady(conn: WorkerConnection, frame: DecodedFrame): void {
    const ready = parseReady(frame);
    if (ready.layoutHash !== this.terms.layoutHash) {
      throw new ProtocolError('DPT_ERR_LAYOUT_MISMATCH', `the worker's parameter layout hashes to ${ready.layoutHash}, the coordinator's to ${this.terms.layoutHash}: run the same dpt version on both sides`);
    }
    if (this.terms.data === 'local' && ready.dataDigest !== this.terms.dataDigest) {
      throw new ProtocolError('DPT_ERR_DATA_MISMATCH', 'the worker\'s training images differ from the coordinator\'s: point its --data-dir at the same MNIST files, or use --data ship');
    }
    if (conn.handshakeTimer) clearTimeout(conn.handshakeTimer);
    conn.handshakeTimer = null;
    conn.state = 'ready';
    this.events.onReady(conn);
  }

  /** Stops accepting, tells every worker to stop, and waits (briefly) for the sockets to close. */
  async close(reason: string, step: number | null): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    const waits: Promise<void>[] = [];
    for (const c of this.connections) {
      waits.push(new Promise<void>((resolve) => {
        if (c.socket.readyState === c.socket.CLOSED) return resolve();
        const t = setTimeout(() => { c.socket.terminate(); resolve(); }, 2000);
        c.socket.once('close', () => { clearTimeout(t); resolve(); });
      }));
      if (c.open && c.state === 'ready') c.sendMessage({ type: 'stop', step, reason });
      c.socket.close(1000, 'stop');
    }
    await Promise.all(waits);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    // ws leaves a server it was given open; connections still in a TLS handshake would hold it
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
