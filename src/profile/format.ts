/** Number formatting shared by the text tables, the verdict and the HTML report. */

/** Milliseconds with a unit that keeps 3 significant figures: 0.012 ms → "12.0 µs". */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms === 0) return '0';
  const a = Math.abs(ms);
  if (a < 1) return `${(ms * 1000).toPrecision(3)} µs`;
  if (a < 1000) return `${ms.toPrecision(3)} ms`;
  return `${(ms / 1000).toPrecision(3)} s`;
}

/** A whole number with thousands separators: 12345.6 → "12,346". */
export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

export function fmtPct(fraction: number, digits = 1): string {
  return Number.isFinite(fraction) ? `${(100 * fraction).toFixed(digits)}%` : '–';
}

export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '–';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

export function fmtX(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '–';
}

/** A plain text table: first row is the header, columns right-aligned except the first and any in `left`. */
export function textTable(rows: string[][], left: readonly number[] = []): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r, i) => {
    const line = r.map((cell, c) => (c === 0 || left.includes(c) ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
    return i === 0 ? `${line.trimEnd()}\n${'-'.repeat(line.length)}` : line.trimEnd();
  }).flatMap((l) => l.split('\n'));
}

/** A rate in bits per second: 1e8 → "100 Mbit/s". */
export function fmtRate(bitsPerS: number): string {
  if (bitsPerS >= 1e9) return `${(bitsPerS / 1e9).toPrecision(3)} Gbit/s`;
  if (bitsPerS >= 1e6) return `${(bitsPerS / 1e6).toPrecision(3)} Mbit/s`;
  return `${(bitsPerS / 1e3).toPrecision(3)} kbit/s`;
}
