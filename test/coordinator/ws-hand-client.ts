/**
 * Test helper: a real WebSocket client (the ws package) that speaks the dpt protocol by hand, so
 * tests can send exactly the bytes they mean — right ones, and wrong ones.
 */
import { WebSocket } from 'ws';
import { proofFor } from '../../src/protocol/auth.js';
import { decodeFrame, encodeFrame, type DecodedFrame, type Tensor } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';

export class HandClient {
  private readonly inbox: DecodedFrame[] = [];
  private waiters: ((f: DecodedFrame | null) => void)[] = [];
  /** the last error frame the server sent, whoever read it */
  private lastError: DecodedFrame | null = null;
  /** resolves with the close code and reason the server sent */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        for (const w of this.waiters) w(null);
        this.waiters = [];
        resolve({ code, reason: reason.toString() });
      });
    });
    socket.on('error', () => {});
    socket.on('message', (data: Buffer) => {
      const f = decodeFrame(data);
      if (f.envelope.type === 'error') this.lastError = f;
      const w = this.waiters.shift();
      if (w) w(f);
      else this.inbox.push(f);
    });
  }

  /** autoPong false: a peer whose process is alive but stuck (never answers a ping) */
  static connect(url: string, o: { autoPong?: boolean } = {}): Promise<HandClient> {
    const socket = new WebSocket(url, { perMessageDeflate: false, autoPong: o.autoPong ?? true });
    const c = new HandClient(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(c));
      socket.once('error', reject);
    });
  }

  /** The next frame from the server, or null once the connection closed. */
  next(): Promise<DecodedFrame | null> {
    const f = this.inbox.shift();
    if (f) return Promise.resolve(f);
    if (this.socket.readyState !== WebSocket.OPEN) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next frame of this type; fails on anything else. */
  async expect(type: string): Promise<DecodedFrame> {
    const f = await this.next();
    if (f === null) throw new Error(`connection closed while waiting for ${type}`);
    if (f.envelope.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(f.envelope)}`);
    return f;
  }

  send(envelope: Record<string, unknown>, sections: [string, Tensor][] = []): void {
    this.socket.send(encodeFrame(envelope, sections));
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.socket.send(bytes);
  }

  /** Answers the challenge; returns the setup frame (or the server's error frame). */
  async hello(token: string, version = PROTOCOL_VERSION): Promise<DecodedFrame | null> {
    const ch = await this.expect('challenge');
    this.send({ type: 'hello', version, proof: proofFor(token, 'worker', String(ch.envelope.nonce)), nonce: 'aa'.repeat(16), host: 'hand', pid: 1 });
    return this.next();
  }

  /** The error the server refused us with, and its close code. */
  async refusal(): Promise<{ code: unknown; message: unknown; closeCode: number; closeReason: string }> {
    const c = await this.closed;
    const f = this.lastError;
    return { code: f?.envelope.code, message: f?.envelope.message, closeCode: c.code, closeReason: c.reason };
  }

  close(): void {
    this.socket.terminate();
  }
}
