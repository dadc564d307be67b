/**
 * Holds a training run between its steps until it is that run's turn. The run awaits `wait` before
 * every step (TrainingRun.waitForTurn) and the gate follows its promise (`follow`); `step()` lets
 * it through one step and resolves when that step is done: when the run waits again, or has ended.
 * With one gate per configuration, each trains in the trainer's own loop while takeTurns decides
 * who steps next.
 */
export class StepGate {
  /** set while the run waits at the gate: calling it lets the run take its next step */
  private release: (() => void) | null = null;
  /** resolves when the run is back at the gate or has ended */
  private arrived: Promise<void>;
  private arrive!: () => void;
  private ended: { error: unknown } | null = null;

  constructor() {
    this.arrived = this.nextArrival();
  }

  /** For TrainingRun.waitForTurn: resolves when step() lets the run through. */
  readonly wait = (): Promise<void> => new Promise<void>((resolve) => {
    this.release = resolve;
    this.arrive();
  });

  /**
   * Follows the run (runTraining's promise) to its end; returns it. A failure is then thrown by
   * step(), so the run's own promise counts as handled.
   */
  follow<T>(run: Promise<T>): Promise<T> {
    const end = (error?: unknown) => {
      this.ended = { error };
      this.arrive();
    };
    run.then(() => end(), end);
    return run;
  }

  /** Lets the run take one step and waits until that step is done. */
  async step(): Promise<void> {
    await this.arrived;
    this.check(true);
    const release = this.release!;
    this.release = null;
    this.arrived = this.nextArrival();
    release();
    await this.arrived;
    this.check(false);
  }

  /** Throws the run's error if it failed; with `mustRun`, also when it ended at all. */
  private check(mustRun: boolean): void {
    if (this.ended === null) return;
    if (this.ended.error !== undefined) throw this.ended.error;
    if (mustRun) throw new Error('the training run ended before it was given all its steps');
  }

  private nextArrival(): Promise<void> {
    return new Promise<void>((resolve) => { this.arrive = resolve; });
  }
}
