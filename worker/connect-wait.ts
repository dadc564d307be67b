/**
 * What a worker says while its coordinator is not up, before the first connection (ConnectWait)
 * or after losing it (ReconnectWait): once, that it is waiting, why, and until when; then once,
 * that it is connected again; and the error it exits with at the deadline. A worker whose first
 * attempt connects says nothing. The retrying itself is runWorker's (ws-worker.ts).
 */

/** Connection failures worth retrying until the deadline, in words for the waiting line. */
const RETRIABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens there yet',
  ECONNRESET: 'the connection was reset',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  ETIMEDOUT: 'no answer',
  EAI_AGAIN: 'the host name does not resolve yet',
};

/** Why a failed connection attempt is worth another, or null when it is not. */
export function retryReason(code: string | undefined): string | null {
  return RETRIABLE[code ?? ''] ?? null;
}

/** Said when an attempt has neither connected nor failed after this long. */
export const NO_ANSWER_MS = 1000;
export const NO_ANSWER = 'no answer yet';

/** What runWorker's connection loop needs to know and say while it retries. */
export interface Wait {
  /** Milliseconds until the worker gives up (negative once past). */
  leftMs(): number;
  /** An attempt failed, or has not answered yet, for this reason. */
  waiting(reason: string): void;
  /** An attempt connected. */
  connected(): void;
  /** The error the worker exits with when the deadline passes; `reason` is the last failure. */
  gaveUp(reason: string): string;
}

/** Retries double from 100 ms up to this, so a coordinator that comes up is found within it. */
export const MAX_RETRY_DELAY_MS = 2000;

const clock = (inMs: number): string => new Date(Date.now() + inMs).toTimeString().slice(0, 8);

export class ConnectWait implements Wait {
  private readonly startMs = performance.now();
  private readonly deadlineMs: number;
  private announced = false;

  constructor(private readonly url: string, private readonly timeoutMs: number, private readonly log: (line: string) => void) {
    this.deadlineMs = this.startMs + timeoutMs;
  }

  /** Milliseconds until the worker gives up (negative once past). */
  leftMs(): number {
    return this.deadlineMs - performance.now();
  }

  /** Says that the worker is waiting, the first time only: later reasons would only repeat it. */
  waiting(reason: string): void {
    if (this.announced) return;
    this.announced = true;
    this.log(`waiting for the coordinator at ${this.url} (${reason}); retrying until ${clock(this.leftMs())} ` +
      `(--connect-timeout ${Math.round(this.timeoutMs / 1000)}), then giving up`);
  }

  /** Says that the wait is over, if a wait was announced. */
  connected(): void {
    if (!this.announced) return;
    this.log(`connected to ${this.url} after ${((performance.now() - this.startMs) / 1000).toFixed(1)} s`);
  }

  gaveUp(reason: string): string {
    return `no coordinator at ${this.url} after ${Math.round(this.timeoutMs / 1000)} s (${reason}): start it with \`dpt coordinator --listen HOST:PORT\`, or check the address`;
  }
}

/**
 * A worker that lost its coordinator without being told to stop (it crashed, was killed, the
 * network dropped) waits for it to come back, e.g. restarted with --resume: it says so at once,
 * since the loss itself is news, and rejoins as a fresh worker would.
 */
export class ReconnectWait implements Wait {
  private readonly startMs = performance.now();
  private readonly deadlineMs: number;

  constructor(private readonly url: string, private readonly timeoutMs: number, lost: string, private readonly log: (line: string) => void) {
    this.deadlineMs = this.startMs + timeoutMs;
    log(`lost the coordinator at ${url} (${lost}); reconnecting until ${clock(timeoutMs)} (--reconnect-timeout ${Math.round(timeoutMs / 1000)})`);
  }

  leftMs(): number {
    return this.deadlineMs - performance.now();
  }

  /** The loss was announced already; the reasons of failed attempts would only repeat it. */
  waiting(): void {}

  connected(): void {
    this.log(`reconnected to ${this.url} after ${((performance.now() - this.startMs) / 1000).toFixed(1)} s`);
  }

  gaveUp(reason: string): string {
    const s = Math.round(this.timeoutMs / 1000);
    return `the coordinator at ${this.url} did not come back within ${s} s (--reconnect-timeout ${s}; last attempt: ${reason}): restart it with --resume CHECKPOINT and this worker, or raise --reconnect-timeout`;
  }
}
