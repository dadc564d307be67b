/**
 * The text a person reads after `dpt train --profile`: the per-phase table (total, per step,
 * share, p50/p99), the per-worker table, the straggler line and bytes on the wire.
 */
import { GROUPS } from './phases.js';
import { fmtBytes, fmtMs, fmtPct, textTable } from './format.js';
import { STRAGGLER_MARGIN, type ProfileSummary } from './summary.js';

export function profileTables(s: ProfileSummary): string[] {
  const out: string[] = [];
  out.push(`Profile: ${s.steps} steps measured after ${s.burnIn} burn-in steps, ${s.world} worker${s.world > 1 ? 's' : ''}, ` +
    `step ${fmtMs(s.step.meanMs)} mean (p50 ${fmtMs(s.step.p50Ms)}, p99 ${fmtMs(s.step.p99Ms)}), phases cover ${fmtPct(s.coverage)} of it`);
  out.push(...textTable([
    ['phase', 'total', 'per step', 'share', 'p50', 'p99'],
    ...s.phases.map((p) => [p.phase, fmtMs(p.totalMs), fmtMs(p.perStepMs), fmtPct(p.share), fmtMs(p.p50Ms), fmtMs(p.p99Ms)]),
  ]));
  if (s.eval.count > 0) out.push(`EVAL (between epochs, not part of a step): ${s.eval.count} x, ${fmtMs(s.eval.totalMs)} in total`);
  out.push('');
  out.push('Per worker (ms per step from each rank\'s point of view; each row sums to the step time):');
  out.push(...textTable([
    ['rank', ...GROUPS, 'busy', 'busy p50', 'busy p99', 'finished last', 'bytes out', 'bytes in'],
    ...s.workers.map((w) => [String(w.rank), ...GROUPS.map((g) => fmtMs(w.groups[g])), fmtMs(w.busyMs), fmtMs(w.busyP50Ms), fmtMs(w.busyP99Ms), fmtPct(w.finishedLast, 0),
      fmtBytes(w.bytesSentPerStep), fmtBytes(w.bytesReceivedPerStep)]),
  ]));
  out.push(stragglerLine(s));
  out.push(`Ranks busy at once: ${s.concurrency.toFixed(2)} on average; ${fmtBytes(s.bytesPerStep)} on the wire per step`);
  return out;
}

export function stragglerLine(s: ProfileSummary): string {
  if (s.world < 2) return 'Straggler: none (one worker)';
  const t = s.straggler;
  if (t === null) return `Straggler: none (every rank within ${Math.round((STRAGGLER_MARGIN - 1) * 100)}% of the others' busy time)`;
  return `Straggler: rank ${t.rank}, busy ${fmtMs(t.busyMs)} per step against ${fmtMs(t.othersBusyMs)} for the others ` +
    `(${(t.busyMs / t.othersBusyMs).toFixed(2)}x); its reply came last in ${fmtPct(t.finishedLast, 0)} of the steps`;
}
