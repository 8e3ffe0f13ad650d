import { formatLabel } from '../plan/format.js';
import { planTotals, type Plan } from '../plan/plan.js';
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

/** Per-tensor decisions of a plan, for --verbose / dry runs. */
export function planDetails(plan: Plan): string {
  const rows = plan.entries
    .filter((e) => e.record.mlxName !== null)
    .map((e) => [e.hfName, e.shape.join('×'), formatLabel(e.format, plan.dtype), e.bytes.toLocaleString('en-US'), e.note ?? '']);
  return textTable(['tensor', 'shape', 'format', 'bytes', 'note'], rows, [false, true, false, true, false]);
}
