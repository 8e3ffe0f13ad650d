import { formatLabel } from '../format.js';
import { describeNonFinite, type FloatDType, type NonFiniteCounts } from '../io/float.js';
import type { Rounding } from '../options.js';
import { planTotals, writtenEntries, type Plan } from '../plan/plan.js';
import { textTable } from './table.js';

/** The allocation table printed at the end of analyze/quantize. */
export function allocationSummary(plan: Plan): string {
  const t = planTotals(plan);
  const rows = [...t.byFormat.entries()]
    .sort((a, b) => b[1].params - a[1].params)
    .map(([label, r]) => [label, r.tensors, r.params.toLocaleString('en-US'), `${((100 * r.params) / t.params).toFixed(2)}%`, r.bytes.toLocaleString('en-US')]);
  rows.push(['total', [...t.byFormat.values()].reduce((s, r) => s + r.tensors, 0), t.params.toLocaleString('en-US'), '100.00%', t.bytes.toLocaleString('en-US')]);
  return [
    textTable(['format', 'tensors', 'params', 'share', 'bytes'], rows, [false, true, true, true, true]),
    '',
    `nominal average bits ${t.nominalBits.toFixed(3)} | true bpw ${t.trueBpw.toFixed(3)} (scales+biases counted) | ${(t.bytes / 1e9).toFixed(4)} GB = ${(t.bytes / 2 ** 30).toFixed(4)} GiB`,
  ].join('\n');
}

/** Per-tensor decisions of a plan, for --verbose / dry runs (budget plans: importance and expected damage too). */
export function planDetails(plan: Plan): string {
  const written = writtenEntries(plan);
  if (plan.budget) {
    const rows = written.map((e) => [
      e.hfName,
      e.shape.join('×'),
      formatLabel(e.format, plan.dtype),
      e.bytes.toLocaleString('en-US'),
      e.importance?.toFixed(2) ?? '',
      e.damage === undefined ? '' : e.damage.toExponential(2),
    ]);
    return textTable(['tensor', 'shape', 'format', 'bytes', 'importance', 'damage'], rows, [false, true, false, true, true, true]);
  }
  const rows = written.map((e) => [e.hfName, e.shape.join('×'), formatLabel(e.format, plan.dtype), e.bytes.toLocaleString('en-US'), e.reason]);
  return textTable(['tensor', 'shape', 'format', 'bytes', 'reason'], rows, [false, true, false, true, false]);
}

/** Budget plans: the target against the exact bytes of the plan; the rounding when it is the search. */
export function budgetSummary(plan: Plan, rounding: Rounding): string {
  const lines: string[] = [];
  if (plan.budget) {
    const t = planTotals(plan);
    const target = plan.budget.targetBytes;
    const pct = (100 * t.bytes) / target;
    lines.push(
      `budget: target ${target.toLocaleString('en-US')} bytes (${((8 * target) / t.params).toFixed(3)} bpw), plan ${t.bytes.toLocaleString('en-US')} bytes = ${pct.toFixed(3)}% of target; expected damage ${plan.budget.damage.toExponential(4)}`,
    );
    if (pct < 99.5) lines.push(`note: the plan is ${(100 - pct).toFixed(2)}% under the target (no finer combination of formats fits)`);
  }
  if (rounding === 'search') lines.push('rounding: per-group scale search (never worse than MLX round-to-nearest on any group)');
  return lines.map((l) => l + '\n').join('');
}

/** Warnings go to stderr even with --quiet: they say what the output lacks or carries. */
export function printWarnings(lines: readonly string[]): void {
  for (const l of lines) process.stderr.write(`swan: warning: ${l}\n`);
}

/** One warning line for the tensors written with non-finite values (`--allow-nonfinite`), or none. */
export function nonFiniteWarning(counts: ReadonlyMap<string, NonFiniteCounts>, dtype: FloatDType): string[] {
  if (counts.size === 0) return [];
  const shown = [...counts].slice(0, 3).map(([name, c]) => `${name} (${describeNonFinite(c, dtype)})`);
  const more = counts.size > 3 ? `, and ${counts.size - 3} more` : '';
  return [`kept non-finite values (--allow-nonfinite) in ${counts.size} tensor${counts.size > 1 ? 's' : ''}: ${shown.join(', ')}${more}`];
}
