import { formatLabel } from '../format.js';
import { describeNonFinite, type FloatDType, type NonFiniteCounts } from '../io/float.js';
import { gptqTotals, type GptqChoice } from '../manifest/build.js';
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
    return textTable(['tensor', 'shape', 'format', 'bytes', 'importance', 'damage'], rows, [false, true, false, true, true, true]) + '\n\n' + topDamage(plan);
  }
  const rows = written.map((e) => [e.hfName, e.shape.join('×'), formatLabel(e.format, plan.dtype), e.bytes.toLocaleString('en-US'), e.reason]);
  return textTable(['tensor', 'shape', 'format', 'bytes', 'reason'], rows, [false, true, false, true, false]);
}

/**
 * The expected damage with a unit: as a multiple of what the same damage model gives uniform 4-bit
 * g64 (mlx_lm.convert -q) of the same model. Below 1: less damage expected than -q; the figure ranks
 * plans of one model, it is not a perplexity.
 */
export function describeDamage(plan: Plan): string {
  const b = plan.budget!;
  const ref = b.reference;
  if (!ref || !(ref.damage > 0)) return `expected damage ${b.damage.toExponential(3)}`;
  return `expected damage ${(b.damage / ref.damage).toFixed(2)}× that of uniform ${ref.label} (mlx_lm.convert -q, ${ref.bytes.toLocaleString('en-US')} bytes) under the same data-free damage model`;
}

/** The one line that says which size a default run chose, why, and how to change it. */
export function sizeChoiceLine(plan: Plan): string {
  const b = plan.budget;
  if (!b || b.targetFrom !== 'thresholds') return '';
  const t = planTotals(plan);
  const ref = b.reference ? `; uniform ${b.reference.label} like mlx_lm.convert -q would be ${b.reference.bytes.toLocaleString('en-US')} bytes` : '';
  return (
    `size: ${b.targetBytes.toLocaleString('en-US')} bytes of tensors (${((8 * b.targetBytes) / t.params).toFixed(3)} bpw), what SWAN's thresholds (--strategy thresholds) would write, ` +
    `spent where swan expects the least damage; choose another with --target-bpw or --target-size${ref}\n`
  );
}

/** Budget plans: the target against the exact bytes of the plan; the rounding when it is the search. */
export function budgetSummary(plan: Plan, rounding: Rounding): string {
  const lines: string[] = [];
  if (plan.budget) {
    const t = planTotals(plan);
    const target = plan.budget.targetBytes;
    const pct = (100 * t.bytes) / target;
    lines.push(
      `budget: target ${target.toLocaleString('en-US')} bytes of tensors (${((8 * target) / t.params).toFixed(3)} bpw), plan ${t.bytes.toLocaleString('en-US')} bytes = ${pct.toFixed(3)}% of target; ${describeDamage(plan)}`,
    );
    if (pct < 99.5) lines.push(`note: the plan is ${(100 - pct).toFixed(2)}% under the target (no finer combination of formats fits)`);
  }
  if (rounding === 'search') lines.push('rounding: per-group scale search (never worse than MLX round-to-nearest on any group)');
  if (rounding === 'gptq') lines.push("rounding: GPTQ under each layer's input covariance (per tensor the scale search's result where GPTQ's output error is not lower)");
  return lines.map((l) => l + '\n').join('');
}

/** After a `--rounding gptq` write: on how many tensors GPTQ's codes were kept, and the output error it saved. */
export function gptqSummary(choices: ReadonlyMap<string, GptqChoice>): string {
  if (choices.size === 0) return '';
  const t = gptqTotals(choices.values());
  const pct = t.search_output_error > 0 ? `; summed output error tr(E H Eᵀ) ${((100 * t.output_error) / t.search_output_error).toFixed(1)}% of the search's` : '';
  return `gptq: kept on ${t.kept} of ${t.tensors} tensors (the search's codes on the rest)${pct}\n`;
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

/** The three tensors that carry most of a budget plan's expected damage, with their share (for -v). */
export function topDamage(plan: Plan, n = 3): string {
  const total = plan.budget?.damage ?? 0;
  const top = writtenEntries(plan)
    .filter((e) => (e.damage ?? 0) > 0)
    .sort((a, b) => b.damage! - a.damage!)
    .slice(0, n);
  if (!(total > 0) || top.length === 0) return 'expected damage: none (every tensor in float)';
  const lines = top.map((e) => `  ${e.hfName} at ${formatLabel(e.format, plan.dtype)}: ${((100 * e.damage!) / total).toFixed(1)}% of the expected damage`);
  return [`tensors that dominate the expected damage:`, ...lines].join('\n');
}
