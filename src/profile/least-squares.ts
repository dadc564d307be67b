/**
 * Non-negative linear least squares for the cost model: min ‖Xβ − y‖² with β ≥ 0. Columns are
 * scaled to unit norm, the normal equations solved by Gaussian elimination with partial
 * pivoting; a column that is (nearly) a combination of the others, or whose coefficient comes
 * out negative, is dropped (coefficient 0) and the rest refitted. Costs cannot be negative, and
 * a design with one model size cannot tell "per parameter" from "per step": the first of two
 * indistinguishable columns keeps the weight.
 */

export interface Fit {
  coef: number[];
  /** which columns the data could determine */
  determined: boolean[];
  /** root-mean-square residual, in the units of y */
  rms: number;
  n: number;
}

/**
 * @param relative minimise relative rather than absolute errors (rows scaled by 1/y): a cell of
 *   1 ms then counts as much as one of 100 ms, which is what speedup ratios need
 */
export function nnls(Xin: number[][], yin: number[], relative = false): Fit {
  const floor = yin.reduce((a, v) => a + Math.abs(v), 0) / Math.max(1, yin.length) * 1e-3 || 1;
  const w = yin.map((v) => (relative ? 1 / Math.max(Math.abs(v), floor) : 1));
  const X = Xin.map((row, i) => row.map((v) => v * w[i]!));
  const y = yin.map((v, i) => v * w[i]!);
  const n = X.length;
  const k = n > 0 ? X[0]!.length : 0;
  const active = Array.from({ length: k }, (_, j) => X.some((row) => row[j] !== 0));
  for (;;) {
    const { coef, singular } = solveActive(X, y, active);
    if (singular >= 0) {
      active[singular] = false;
      continue;
    }
    let worst = -1;
    for (let j = 0; j < k; j++) if (active[j] && coef[j]! < 0 && (worst < 0 || coef[j]! < coef[worst]!)) worst = j;
    if (worst >= 0) {
      active[worst] = false;
      continue;
    }
    let ss = 0;
    for (let i = 0; i < n; i++) {
      let p = 0;
      for (let j = 0; j < k; j++) p += X[i]![j]! * coef[j]!;
      ss += (p - y[i]!) ** 2;
    }
    return { coef, determined: active.slice(), rms: n > 0 ? Math.sqrt(ss / n) : NaN, n }; // rms in weighted units when relative
  }
}

/** Least squares on the active columns; singular = index of a dependent column, or −1. */
function solveActive(X: number[][], y: number[], active: boolean[]): { coef: number[]; singular: number } {
  const cols = active.flatMap((a, j) => (a ? [j] : []));
  const m = cols.length;
  const coef = new Array<number>(active.length).fill(0);
  if (m === 0) return { coef, singular: -1 };
  const scale = cols.map((j) => Math.sqrt(X.reduce((s, row) => s + row[j]! ** 2, 0)) || 1);
  // normal equations A c = b on the scaled columns
  const A = Array.from({ length: m }, () => new Array<number>(m + 1).fill(0));
  for (const [i, row] of X.entries()) {
    for (let a = 0; a < m; a++) {
      const xa = row[cols[a]!]! / scale[a]!;
      for (let b = 0; b < m; b++) A[a]![b]! += xa * (row[cols[b]!]! / scale[b]!);
      A[a]![m]! += xa * y[i]!;
    }
  }
  for (let c = 0; c < m; c++) {
    let piv = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(A[r]![c]!) > Math.abs(A[piv]![c]!)) piv = r;
    // scaled columns have unit diagonal, so a pivot this small means linear dependence
    if (Math.abs(A[piv]![c]!) < 1e-9) return { coef, singular: cols[c]! };
    [A[c], A[piv]] = [A[piv]!, A[c]!];
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = A[r]![c]! / A[c]![c]!;
      if (f !== 0) for (let q = c; q <= m; q++) A[r]![q]! -= f * A[c]![q]!;
    }
  }
  for (let a = 0; a < m; a++) coef[cols[a]!] = A[a]![m]! / A[a]![a]! / scale[a]!;
  return { coef, singular: -1 };
}
