/**
 * What a worker says while its coordinator is not up yet: once, that it is waiting, why, and
 * until when; then once, that it connected. A worker whose first attempt connects says nothing.
 * The retrying itself is runWorker's (ws-worker.ts).
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

export class ConnectWait {
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
    const until = new Date(Date.now() + this.leftMs()).toTimeString().slice(0, 8);
    this.log(`waiting for the coordinator at ${this.url} (${reason}); retrying until ${until} ` +
      `(--connect-timeout ${Math.round(this.timeoutMs / 1000)}), then giving up`);
  }

  /** Says that the wait is over, if a wait was announced. */
  connected(): void {
    if (!this.announced) return;
    this.log(`connected to ${this.url} after ${((performance.now() - this.startMs) / 1000).toFixed(1)} s`);
  }
}
