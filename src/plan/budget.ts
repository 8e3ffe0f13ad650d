/**
 * The budget strategy: among each tensor's eligible formats (eligibility.ts), with their measured
 * errors (src/measure/candidates.ts), the combination of least total expected damage (damage.ts)
 * within the byte budget (knapsack.ts). Bytes are those of every written tensor, float ones
 * included (planTotals).
 */
import type { TensorRecord } from '../arch/types.js';
import type { FloatDType } from '../io/float.js';
import { roundsWithSearch, type Rounding } from '../options.js';
import { affine, floatCandidate, formatLabel, numel, quantMode, sameFormat, type Candidate, type QuantFormat, type TensorFormat } from '../format.js';
import { DEFAULT_DAMAGE_KNOBS, importance, type DamageKnobs } from './damage.js';
import { eligibleFormats, floatReason, type Eligibility, type EligibilityRules } from './eligibility.js';
import { BudgetError, solveKnapsack, type KnapsackItem } from './knapsack.js';
import { planEntry, type BudgetInfo, type Plan, type PlanEntry } from './plan.js';
import { describeTarget, targetBytes, type SizeTarget } from './target.js';

/** What the budget strategy knows about one tensor: the analysis evidence and its measured candidates. */
export interface BudgetItem {
  record: TensorRecord;
  shape: number[];
  composite: number;
  /** Measured affine candidates (none for tensors MLX cannot quantize). */
  candidates: Candidate[];
}

export interface BudgetOptions {
  target: SizeTarget;
  rounding: Rounding;
  totalLayers: number;
  /** The embedding is also the output head. */
  tied: boolean;
  /** Query heads per key/value head. */
  kvShare?: number;
  knobs?: DamageKnobs;
  /**
   * Which formats each tensor may take: user `--protect`/`--sensitive` patterns, and SWAN's float
   * rules only when `swanRules` is set (QuantizeOptions.budgetKeepsProtected; off by default: the
   * damage model weighs embeddings and the head rather than pinning them to float).
   */
  eligibility: EligibilityRules;
  /** Where the target came from (BudgetInfo.targetFrom); default 'user'. */
  targetFrom?: 'user' | 'thresholds';
}

/** The yardstick of BudgetInfo.reference: mlx_lm.convert -q's format. */
const REFERENCE_FORMAT: TensorFormat = { kind: 'affine', bits: 4, groupSize: 64 };

/**
 * The damage model applied to uniform 4-bit g64 with round-to-nearest (what mlx_lm.convert -q
 * writes): every tensor with a measured 4-bit g64 candidate takes it, the rest stay float.
 */
function referenceDamage(written: BudgetItem[], weights: number[], dtype: FloatDType): NonNullable<BudgetInfo['reference']> {
  let bytes = 0;
  let damage = 0;
  written.forEach((it, i) => {
    const c = it.candidates.find((k) => sameFormat(k.format, REFERENCE_FORMAT)) ?? floatCandidate(it.shape, dtype);
    bytes += c.bytes;
    damage += (c.format.kind === 'float' ? 0 : c.relError) * weights[i]!;
  });
  return { label: formatLabel(REFERENCE_FORMAT, dtype), bytes, damage };
}

/** The measured candidates of one written tensor that eligibility allows, float first, with their damage. */
function options(item: BudgetItem, dtype: FloatDType, opts: BudgetOptions, weight: number): { formats: TensorFormat[]; bytes: number[]; damage: number[]; eligibility: Eligibility } {
  const eligibility = eligibleFormats(item.record, item.shape, opts.eligibility);
  const allowed = eligibility.formats;
  // A pinned format is the only choice: no float fallback.
  const all: Candidate[] = eligibility.pinned && !eligibility.floatRule ? [] : [floatCandidate(item.shape, dtype)];
  for (const c of item.candidates) if (allowed.some((f) => sameFormat(f, c.format))) all.push(c);
  // An allowed format the analysis did not measure (a manifest or analysis made for other --formats) is refused, not silently dropped.
  const unmeasured = allowed.find((f) => !item.candidates.some((c) => sameFormat(f, c.format)));
  if (unmeasured && !eligibility.pinned) throw new Error(`tensor ${item.record.hfName}: no measurement of ${formatLabel(unmeasured, dtype)} (measured for other --formats); analyse again with those --formats`);
  if (all.length === 0) throw new Error(`tensor ${item.record.hfName}: no measurement of its --tensor-type format`);
  const damage = all.map((c) => {
    const e = roundsWithSearch(opts.rounding) ? c.relErrorSearch : c.relError;
    if (e === undefined) throw new Error(`tensor ${item.record.hfName}: no --rounding search measurement for ${formatLabel(c.format, dtype)}`);
    return e * weight;
  });
  return { formats: all.map((c) => c.format), bytes: all.map((c) => c.bytes), damage, eligibility };
}

export function planBudget(items: BudgetItem[], dtype: FloatDType, opts: BudgetOptions): Plan {
  const knobs = opts.knobs ?? DEFAULT_DAMAGE_KNOBS;
  const written = items.filter((it) => it.record.mlxName !== null);
  const params = written.reduce((s, it) => s + numel(it.shape), 0);
  const budget = targetBytes(opts.target, params);
  const weights = written.map((it) =>
    importance({ role: it.record.role, layer: it.record.layer, composite: it.composite, tiedHead: opts.tied, params: numel(it.shape), kvShare: opts.kvShare }, opts.totalLayers, knobs),
  );
  const choices = written.map((it, i) => options(it, dtype, opts, weights[i]!));
  const knapsack: KnapsackItem[] = choices.map((c) => ({ bytes: c.bytes, damage: c.damage }));
  let solution;
  try {
    solution = solveKnapsack(knapsack, budget);
  } catch (e) {
    if (!(e instanceof BudgetError)) throw e;
    const bpw = (b: number) => ((8 * b) / params).toFixed(3);
    const which = budget < e.minBytes ? `below the smallest possible size, ${e.minBytes.toLocaleString('en-US')} bytes (${bpw(e.minBytes)} bpw)` : `above the largest possible size, ${e.maxBytes.toLocaleString('en-US')} bytes (${bpw(e.maxBytes)} bpw, everything in float)`;
    throw new BudgetError(
      `target ${describeTarget(opts.target)} = ${budget.toLocaleString('en-US')} bytes (${bpw(budget)} bpw) is ${which}`,
      e.minBytes,
      e.maxBytes,
    );
  }
  const byName = new Map<string, PlanEntry>();
  written.forEach((it, i) => {
    const j = solution.choice[i]!;
    const c = choices[i]!;
    const format = c.formats[j]!;
    const reason = format.kind === 'float' && c.eligibility.floatRule ? floatReason(c.eligibility) : c.eligibility.pinned ? 'user_pin' : 'least expected damage within the target';
    byName.set(it.record.hfName, { ...planEntry(it.record, it.shape, format, reason, dtype), bytes: c.bytes[j]!, damage: c.damage[j]!, importance: weights[i]! });
  });
  const entries: PlanEntry[] = items.map((it) => byName.get(it.record.hfName) ?? planEntry(it.record, it.shape, { kind: 'float' }, 'dropped_by_mlx', dtype));
  const top = mostCommonFormat(entries);
  return {
    strategy: 'budget',
    dtype,
    defaultBits: top.bits,
    defaultGroupSize: top.groupSize,
    ...(top.kind === 'fp' ? { defaultMode: quantMode(top) } : {}),
    entries,
    budget: {
      targetBytes: budget,
      rounding: opts.rounding,
      damage: solution.damage,
      knobs,
      targetFrom: opts.targetFrom ?? 'user',
      reference: referenceDamage(written, weights, dtype),
    },
  };
}

/** Top-level `quantization` of config.json: the quantized format most layers use (fewest per-layer entries). */
function mostCommonFormat(entries: PlanEntry[]): QuantFormat {
  const counts: { f: QuantFormat; n: number }[] = [];
  for (const e of entries) {
    if (e.format.kind === 'float' || e.record.mlxName === null) continue;
    const row = counts.find((c) => sameFormat(c.f, e.format));
    if (row) row.n++;
    else counts.push({ f: e.format, n: 1 });
  }
  // Ties: affine before fp (the config's usual top level), then more bits, then the smaller group.
  const fp = (f: QuantFormat) => (f.kind === 'fp' ? 1 : 0);
  counts.sort((a, b) => b.n - a.n || fp(a.f) - fp(b.f) || b.f.bits - a.f.bits || a.f.groupSize - b.f.groupSize);
  return counts[0]?.f ?? affine(4, 64);
}
