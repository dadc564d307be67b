/**
 * Everything the coordinator knows about one worker connection, in one place: the socket, where
 * the handshake stands, the rank (once it has one), the step outstanding on it, its send buffer
 * and the deadline of that step (ws-group.ts).
 */
import type { WebSocket } from 'ws';
import { FrameWriter, encodeFrame, wireBytes } from '../src/protocol/codec.js';
import { ProtocolError, closeCodeFor, type ErrorCode } from '../src/protocol/errors.js';
import type { ShardResult } from './worker-group.js';

export type ConnectionState = 'challenged' | 'setup-sent' | 'ready' | 'closed';

/** The step outstanding on a connection: what the reply must match, and how to hand it back. */
export interface PendingStep {
  step: number;
  /** which of the step's shards this is (its rank's, or a lost rank's re-assigned here) */
  shard: number;
  count: number;
  /** a whole local-SGD round (answered by delta), and whether its reply carries a velocity; null for a step */
  round: { velocity: boolean } | null;
  sentAt: number;
  encodeMs: number;
  bytesSent: number;
  resolve(r: ShardResult): void;
  reject(e: ProtocolError): void;
}

export class WorkerConnection {
  state: ConnectionState = 'challenged';
  rank: number | null = null;
  /** nonce this side sent in the challenge */
  readonly nonce: string;
  /** what the worker told about itself in hello (for logs) */
  host = '?';
  pid = 0;
  pending: PendingStep | null = null;
  /** set when the connection failed; the reason the rank was lost */
  error: ProtocolError | null = null;
  /** heartbeat: pings sent since the last pong */
  missedPongs = 0;
  readonly writer = new FrameWriter(4096);
  handshakeTimer: NodeJS.Timeout | null = null;

  constructor(readonly id: number, readonly socket: WebSocket, readonly peer: string, nonce: string) {
    this.nonce = nonce;
  }

  get label(): string {
    return `${this.rank === null ? `connection ${this.id}` : `worker ${this.rank}`} (${this.peer}${this.pid ? `, ${this.host} pid ${this.pid}` : ''})`;
  }

  get open(): boolean {
    return this.state !== 'closed' && this.socket.readyState === this.socket.OPEN;
  }

  /**
   * Sends a frame; returns the bytes it put on the wire (0 if the socket is gone). `written`, when
   * given, is called once the frame has been handed to the kernel (or the socket is gone).
   */
  send(frame: Uint8Array, written?: () => void): number {
    if (!this.open) {
      written?.();
      return 0;
    }
    this.socket.send(frame, { binary: true }, written && (() => written()));
    return wireBytes(frame.length, false);
  }

  sendMessage(envelope: Record<string, unknown>): number {
    return this.send(encodeFrame(envelope));
  }

  /**
   * Refuses this connection: an error message (when the socket still takes one), a close frame
   * whose code and reason carry the error code, and the outstanding step rejected.
   */
  fail(err: ProtocolError, step: number | null = this.pending?.step ?? null): void {
    if (this.state === 'closed') return;
    this.error = err;
    if (this.socket.readyState === this.socket.OPEN) {
      this.sendMessage({ type: 'error', code: err.code, message: err.detail, step });
      this.socket.close(closeCodeFor(err.code), err.code);
    }
    this.markClosed(err);
  }

  /** The connection is gone (closed by us, the peer, or the network): settle what waits on it. */
  markClosed(err: ProtocolError): void {
    this.error ??= err;
    this.state = 'closed';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    const p = this.pending;
    this.pending = null;
    p?.reject(this.error);
  }

  /** Forcibly drops the socket (unresponsive peer). */
  terminate(code: ErrorCode, message: string): void {
    this.markClosed(new ProtocolError(code, message));
    this.socket.terminate();
  }
}
