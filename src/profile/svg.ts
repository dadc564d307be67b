/**
 * Two small inline-SVG charts for the HTML report, with no library and nothing fetched: stacked
 * horizontal bars, and lines with markers on linear axes. Text is escaped; sizes are in px.
 */

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (x: number): string => (Math.round(x * 10) / 10).toString();

export interface BarRow {
  label: string;
  parts: number[];
  /** text at the end of the bar */
  note?: string;
}

export function stackedBars(rows: BarRow[], partNames: readonly string[], colors: readonly string[], unit: string, width = 760): string {
  const left = 150, right = 160, barH = 20, gap = 8, top = 28;
  const max = Math.max(1e-12, ...rows.map((r) => r.parts.reduce((a, b) => a + b, 0)));
  const plotW = width - left - right;
  const height = top + rows.length * (barH + gap) + 30;
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`];
  let lx = left;
  partNames.forEach((name, i) => {
    const x = lx;
    lx += 30 + 7 * name.length;
    out.push(`<rect x="${x}" y="6" width="12" height="12" fill="${colors[i]}"/><text x="${x + 16}" y="16">${esc(name)}</text>`);
  });
  rows.forEach((r, i) => {
    const y = top + i * (barH + gap);
    out.push(`<text x="${left - 6}" y="${y + 14}" text-anchor="end">${esc(r.label)}</text>`);
    let x = left;
    r.parts.forEach((v, k) => {
      const w = (Math.max(0, v) / max) * plotW;
      if (w > 0) out.push(`<rect x="${f(x)}" y="${y}" width="${f(w)}" height="${barH}" fill="${colors[k]}"><title>${esc(`${partNames[k]}: ${v.toPrecision(3)} ${unit}`)}</title></rect>`);
      x += w;
    });
    if (r.note) out.push(`<text x="${f(x + 4)}" y="${y + 14}">${esc(r.note)}</text>`);
  });
  const axisY = top + rows.length * (barH + gap) + 4;
  for (const t of ticks(0, max, 5)) {
    const x = left + (t / max) * plotW;
    out.push(`<line x1="${f(x)}" y1="${axisY}" x2="${f(x)}" y2="${axisY + 4}" stroke="#333"/><text x="${f(x)}" y="${axisY + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  out.push(`<text x="${width - right + 4}" y="${axisY + 16}">${esc(unit)}</text></svg>`);
  return out.join('');
}

export interface Series {
  name: string;
  points: [number, number][];
  color: string;
  dashed?: boolean;
  markers?: boolean;
}

const MAX_POINTS = 2000;

/** Every k-th point so that at most `max` remain, the last one kept. */
function thin(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const k = Math.ceil(points.length / max);
  const kept = points.filter((_, i) => i % k === 0);
  if ((points.length - 1) % k !== 0) kept.push(points.at(-1)!);
  return kept;
}

export function lineChart(series: Series[], o: { xLabel: string; yLabel: string; width?: number; height?: number; yMin?: number }): string {
  const width = o.width ?? 560, height = o.height ?? 320;
  const left = 56, right = 150, top = 16, bottom = 44;
  // a long run has hundreds of thousands of points: a path of a few thousand draws the same curve,
  // and the extremes are found with loops (spreading that many arguments overflows the stack)
  series = series.map((s) => ({ ...s, points: thin(s.points, MAX_POINTS) }));
  let xMin = Infinity, xMax = -Infinity, yLow = Infinity, yMax = -Infinity;
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (!(Number.isFinite(x) && Number.isFinite(y))) continue;
      if (x < xMin) xMin = x;
      if (x > xMax) xMax = x;
      if (y < yLow) yLow = y;
      if (y > yMax) yMax = y;
    }
  }
  const yMin = o.yMin ?? yLow;
  const sx = (x: number): number => left + ((x - xMin) / (xMax - xMin || 1)) * (width - left - right);
  const sy = (y: number): number => height - bottom - ((y - yMin) / (yMax - yMin || 1)) * (height - top - bottom);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" fill="none" stroke="#999"/>`];
  for (const t of ticks(xMin, xMax, 6)) out.push(`<text x="${f(sx(t))}" y="${height - bottom + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  for (const t of ticks(yMin, yMax, 5)) {
    out.push(`<line x1="${left}" x2="${width - right}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#eee"/><text x="${left - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${fmtTick(t)}</text>`);
  }
  out.push(`<text x="${(left + width - right) / 2}" y="${height - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text x="14" y="${(top + height - bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(top + height - bottom) / 2})">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (p.length === 0) return;
    const d = p.map(([x, y], k) => `${k ? 'L' : 'M'}${f(sx(x))},${f(sy(y))}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    if (s.markers) for (const [x, y] of p) out.push(`<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="3.5" fill="${s.color}"><title>${esc(`${s.name}: ${fmtTick(x)}, ${y.toPrecision(3)}`)}</title></circle>`);
    const ly = top + 12 + i * 18;
    out.push(`<line x1="${width - right + 8}" x2="${width - right + 30}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${width - right + 34}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('');
}

function ticks(lo: number, hi: number, n: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.round(t / step) * step);
  return out;
}

const fmtTick = (t: number): string => (Math.abs(t) >= 1000 || t === 0 ? Math.round(t).toLocaleString('en-US') : Number(t.toPrecision(3)).toString());

/** Centred moving average over `window` points (shorter at the ends), for noisy per-step curves. */
export function smooth(ys: number[], window: number): number[] {
  const h = Math.floor(window / 2);
  return ys.map((_, i) => {
    let s = 0;
    let n = 0;
    for (let k = Math.max(0, i - h); k <= Math.min(ys.length - 1, i + h); k++) if (Number.isFinite(ys[k]!)) { s += ys[k]!; n++; }
    return n > 0 ? s / n : NaN;
  });
}
