/**
 * Which formats a tensor may take, and why it must stay float: the one place that decides it.
 * Every strategy (thresholds.ts, uniform.ts, budget.ts) only chooses among the formats this
 * returns; the rule that kept a tensor float becomes the plan entry's (and the manifest's) reason.
 *
 * Rules, in the order they are checked:
 *  1. dropped_by_mlx    the MLX model has no such parameter (a tied lm_head, rotary buffers);
 *  2. not_quantizable   not the weight of an MLX Linear or Embedding (norms, biases, other tensors:
 *                       MLX has no quantized form of them; src/arch decides per architecture);
 *  3. user_protect      a user `--protect` pattern;
 *  4. SWAN's float rules, applied only where the strategy asks for them (`swanRules`):
 *     1d_tensor, small_tensor, protected_pattern (swanFloatRule in swan-rules.ts);
 *  5. no_group_divides  no group size of an allowed format divides the last dimension.
 * Formats are MLX's affine ones (bits × group) and its fp modes (mxfp4, nvfp4, mxfp8: one group
 * each); a user `--formats` list (parseFormats in src/format.ts) keeps only those it names, and a
 * user `--sensitive` pattern then removes the formats under 8 bits.
 */
import type { TensorRecord } from '../arch/types.js';
import { ALL_QUANT_FORMATS, FLOAT, formatOfMode, groupDivides, sameFormat, type QuantFormat, type QuantMode, type TensorFormat } from '../format.js';
import { matchesAny, swanFloatRule, type SwanConfig } from './swan-rules.js';

export type FloatRule = 'dropped_by_mlx' | 'not_quantizable' | 'user_protect' | '1d_tensor' | 'small_tensor' | 'protected_pattern' | 'no_group_divides';

export interface EligibilityRules {
  /**
   * Apply SWAN's published float rules (1-D, under `minTensorParams`, `protectedPatterns`) from
   * this config. The thresholds strategy does (the method as published); uniform does not
   * (mlx_lm.convert quantizes every Linear and Embedding); budget does only when asked
   * (QuantizeOptions.budgetKeepsProtected): by default its damage model weighs embeddings and the
   * head instead of pinning them to float.
   */
  swanRules?: SwanConfig;
  /** User `--protect` patterns: kept float (case-insensitive substrings). */
  keepFloat?: readonly string[];
  /** User `--sensitive` patterns: at least 8 bits. */
  atLeast8?: readonly string[];
  /** User `--formats`: the only quantized formats allowed (undefined: all). */
  allowedFormats?: readonly QuantFormat[];
}

export interface Eligibility {
  /** Quantized formats the tensor may take (empty when it stays float). */
  formats: QuantFormat[];
  /** Why it stays float, when `formats` is empty. */
  floatRule?: FloatRule;
  /** A human-readable detail of the rule (e.g. which dimension no group divides). */
  detail?: string;
}

/**
 * Every format MLX accepts for this tensor (of `allowed`, default all), before any strategy's
 * rule: what analysis measures.
 */
export function measurableFormats(record: TensorRecord, shape: number[], allowed: readonly QuantFormat[] = ALL_QUANT_FORMATS): QuantFormat[] {
  if (record.mlxName === null || !record.quantizable) return [];
  return allowed.filter((f) => groupDivides(shape, f.groupSize));
}

/** The formats `record` may take under `rules`, or the rule that keeps it float. */
export function eligibleFormats(record: TensorRecord, shape: number[], rules: EligibilityRules): Eligibility {
  if (record.mlxName === null) return { formats: [], floatRule: 'dropped_by_mlx' };
  if (!record.quantizable) return { formats: [], floatRule: 'not_quantizable' };
  if (matchesAny(record.hfName, rules.keepFloat)) return { formats: [], floatRule: 'user_protect' };
  const swan = rules.swanRules && swanFloatRule(record.hfName, shape, rules.swanRules);
  if (swan) return { formats: [], floatRule: swan };
  const allowed = rules.allowedFormats ?? ALL_QUANT_FORMATS;
  let formats = measurableFormats(record, shape, allowed);
  if (formats.length === 0) {
    const groups = [...new Set(allowed.map((f) => f.groupSize))].sort((a, b) => a - b);
    return { formats, floatRule: 'no_group_divides', detail: `last dim ${shape[shape.length - 1]} not divisible by ${groups.join(', ')}` };
  }
  if (matchesAny(record.hfName, rules.atLeast8)) formats = formats.filter((f) => f.bits >= 8);
  return { formats };
}

/**
 * The format bits × groupSize of `mode` (default affine) when eligibility allows it, else float
 * with the rule that refused it (strategies that want one particular format: thresholds, uniform).
 */
export function pickFormat(e: Eligibility, shape: number[], bits: number, groupSize: number, mode: QuantMode = 'affine'): { format: TensorFormat; floatReason?: string } {
  if (e.floatRule) return { format: FLOAT, floatReason: floatReason(e) };
  const want = formatOfMode(mode, bits, groupSize);
  const f = e.formats.find((x) => sameFormat(x, want));
  if (f) return { format: f };
  const label = mode === 'affine' ? `${bits}-bit g${groupSize}` : mode;
  const why = groupDivides(shape, groupSize) ? `${label} not allowed (--formats or --sensitive)` : `last dim ${shape[shape.length - 1]} not divisible by group ${groupSize}`;
  return { format: FLOAT, floatReason: `no_group_divides: ${why}` };
}

/** The reason string a plan entry records for a float tensor. */
export function floatReason(e: Eligibility): string {
  return e.detail ? `${e.floatRule}: ${e.detail}` : e.floatRule!;
}
