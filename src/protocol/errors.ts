/**
 * Stable error codes of the WebSocket protocol. A code names what went wrong on the wire; it
 * travels in an `error` message and, as the reason of the WebSocket close frame, with a close
 * code in the application range (4000-4999) so even a peer that cannot parse our frames learns it.
 */

export const ERROR_CODES = {
  /** a message that is valid but not allowed in the connection's current state */
  DPT_ERR_PROTOCOL: 4000,
  /** the peer speaks another protocol version */
  DPT_ERR_VERSION: 4001,
  /** the peer could not prove it knows the shared token */
  DPT_ERR_AUTH: 4002,
  /** the two sides disagree on the parameter layout */
  DPT_ERR_LAYOUT_MISMATCH: 4003,
  /** the worker's copy of the training set differs from the coordinator's */
  DPT_ERR_DATA_MISMATCH: 4004,
  /** bytes that are not a frame: garbage, truncated, text, a malformed envelope */
  DPT_ERR_BAD_FRAME: 4005,
  /** a tensor or field of the wrong length or type for the layout */
  DPT_ERR_SHAPE: 4006,
  /** NaN or ±Infinity where a finite number is required */
  DPT_ERR_NOT_FINITE: 4007,
  /** a reply for a step that is not the one outstanding */
  DPT_ERR_STALE_STEP: 4008,
  /** a frame larger than the layout allows (ws itself closes with 1009) */
  DPT_ERR_TOO_LARGE: 4009,
  /** a peer that did not answer in time (handshake, heartbeat, joining) */
  DPT_ERR_WORKER_TIMEOUT: 4010,
  /** the connection to a worker that holds a rank closed */
  DPT_ERR_WORKER_LOST: 4011,
  /** every rank is taken; this worker is not needed */
  DPT_ERR_WORLD_FULL: 4012,
  /** the worker failed on its side (it names why) */
  DPT_ERR_WORKER_FAILED: 4013,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERROR_CODES, x);
}

/** The WebSocket close code carrying an error code (reason = the code's name). */
export function closeCodeFor(code: ErrorCode): number {
  return ERROR_CODES[code];
}

/** The error code a close code stands for, including ws's own 1009 (message too big). */
export function errorCodeForClose(closeCode: number): ErrorCode | null {
  if (closeCode === 1009) return 'DPT_ERR_TOO_LARGE';
  for (const [name, value] of Object.entries(ERROR_CODES)) if (value === closeCode) return name as ErrorCode;
  return null;
}

/** Something on the wire broke the protocol; `code` is stable, the message says what and how to fix it. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(readonly code: ErrorCode, message: string) {
    super(`${code}: ${message}`);
  }
  /** the message without the code prefix, for the wire */
  get detail(): string {
    return this.message.slice(this.code.length + 2);
  }
}
