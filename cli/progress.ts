/**
 * A one-line progress bar on stderr: steps, items/s and ETA, redrawn at most ten times a second.
 * Disabled (every call a no-op) when stderr is not a TTY or output is JSON.
 */
import { fmtInt } from '../src/profile/format.js';

export class ProgressBar {
  private start = 0;
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly enabled: boolean, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  begin(): void {
    this.start = performance.now();
    this.lastDraw = 0;
  }

  update(done: number, total: number, itemsPerUnit: number, label: string): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (done < total && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const elapsed = (now - this.start) / 1000;
    const rate = elapsed > 0 ? (done * itemsPerUnit) / elapsed : 0;
    const eta = done > 0 ? (elapsed / done) * (total - done) : 0;
    const width = 30;
    const filled = Math.round((done / total) * width);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} steps  ${fmtInt(rate)} items/s  ETA ${eta.toFixed(1)} s`;
    this.stream.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  clear(): void {
    if (this.enabled && this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
