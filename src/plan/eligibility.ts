/**
 * Which formats a tensor may take, and why it must stay float: the one place that decides it.
 * Every strategy (thresholds.ts, uniform.ts, budget.ts) only chooses among the formats this
 * returns; the rule that kept a tensor float becomes the plan entry's (and the manifest's) reason.
 *
 * Rules, in the order they are checked:
 *  1. dropped_by_mlx    the MLX model has no such parameter (a tied lm_head, rotary buffers);
 *  2. not_quantizable   not the weight of an MLX Linear or Embedding (norms, biases, other tensors:
 *                       MLX has no quantized form of them; src/arch decides per architecture);
 *     user_pin          a `--tensor-type PATTERN=FORMAT` pin: that format only (or float), in every
 *                       strategy, before any other rule (a pin the tensor cannot take is an error);
 *  3. user_protect      a user `--protect` pattern;
 *  4. SWAN's float rules, applied only where the strategy asks for them (`swanRules`):
 *     1d_tensor, small_tensor, protected_pattern (swanFloatRule in swan-rules.ts);
 *  5. no_group_divides  no group size of an allowed format divides the last dimension.
 * Formats are MLX's affine ones (bits × group) and its fp modes (mxfp4, nvfp4, mxfp8: one group
 * each); a user `--formats` list (parseFormats in src/format.ts) keeps only those it names. A user
 * `--sensitive` pattern then removes the formats under 8 bits, and so does `protectRouters` for a
 * MoE router (`mlp.gate`, `block_sparse_moe.gate`) or qwen2_moe's `shared_expert_gate`: they
 * decide which experts run, are tiny, and mlx-lm itself keeps qwen3_moe's at 8-bit.
 */
import type { TensorRecord } from '../arch/types.js';
import { ALL_QUANT_FORMATS, FLOAT, formatOfMode, groupDivides, sameFormat, type QuantFormat, type QuantMode, type TensorFormat } from '../format.js';
import { matchesAny, swanFloatRule, type SwanConfig } from './swan-rules.js';

export type FloatRule = 'dropped_by_mlx' | 'not_quantizable' | 'user_pin' | 'user_protect' | '1d_tensor' | 'small_tensor' | 'protected_pattern' | 'no_group_divides';

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
  /** User `--tensor-type` pins, first match wins. */
  pins?: readonly TensorPin[];
  /** Routers (role `router`) at least 8 bits: SWAN's strategies (thresholds, budget); not uniform, which follows mlx_lm.convert. */
  protectRouters?: boolean;
  /** User `--formats`: the only quantized formats allowed (undefined: all). */
  allowedFormats?: readonly QuantFormat[];
}

/** `--tensor-type PATTERN=FORMAT`: tensors whose HF name matches the (case-insensitive) regular expression take FORMAT. */
export interface TensorPin {
  pattern: string;
  format: TensorFormat;
}

/** The first pin whose pattern matches `hfName`. */
export function matchingPin(hfName: string, pins: readonly TensorPin[] | undefined): TensorPin | undefined {
  return pins?.find((p) => new RegExp(p.pattern, 'i').test(hfName));
}

/** Pins that match none of `names` (a typo would otherwise be silently ignored). */
export function unmatchedPins(names: readonly string[], pins: readonly TensorPin[] | undefined): TensorPin[] {
  return (pins ?? []).filter((p) => !names.some((n) => new RegExp(p.pattern, 'i').test(n)));
}

/** The fewest bits a quantized tensor may have under `rules` (8 for --sensitive names and protected routers). */
export function minimumBits(record: TensorRecord, rules: EligibilityRules): number {
  return matchesAny(record.hfName, rules.atLeast8) || (rules.protectRouters && record.role === 'router') ? 8 : 0;
}

export interface Eligibility {
  /** Quantized formats the tensor may take (empty when it stays float). */
  formats: QuantFormat[];
  /** Why it stays float, when `formats` is empty. */
  floatRule?: FloatRule;
  /** A `--tensor-type` pin decided it: `formats` is that one format (or float with floatRule user_pin). */
  pinned?: boolean;
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
  const pin = matchingPin(record.hfName, rules.pins);
  if (pin) {
    if (pin.format.kind === 'float') return { formats: [], floatRule: 'user_pin', pinned: true, detail: `--tensor-type ${pin.pattern}` };
    const format = pin.format;
    if (!measurableFormats(record, shape).some((f) => sameFormat(f, format))) {
      throw new Error(`--tensor-type ${pin.pattern}: tensor ${record.hfName} (last dim ${shape[shape.length - 1]}) cannot take ${format.bits}-bit g${format.groupSize}`);
    }
    return { formats: [format], pinned: true };
  }
  if (matchesAny(record.hfName, rules.keepFloat)) return { formats: [], floatRule: 'user_protect' };
  const swan = rules.swanRules && swanFloatRule(record.hfName, shape, rules.swanRules);
  if (swan) return { formats: [], floatRule: swan };
  const allowed = rules.allowedFormats ?? ALL_QUANT_FORMATS;
  let formats = measurableFormats(record, shape, allowed);
  if (formats.length === 0) {
    const groups = [...new Set(allowed.map((f) => f.groupSize))].sort((a, b) => a - b);
    return { formats, floatRule: 'no_group_divides', detail: `last dim ${shape[shape.length - 1]} not divisible by ${groups.join(', ')}` };
  }
  const min = minimumBits(record, rules);
  if (min > 0) formats = formats.filter((f) => f.bits >= min);
  return { formats };
}

/**
 * The format bits × groupSize of `mode` (default affine) when eligibility allows it, else float
 * with the rule that refused it (strategies that want one particular format: thresholds, uniform).
 */
export function pickFormat(e: Eligibility, shape: number[], bits: number, groupSize: number, mode: QuantMode = 'affine'): { format: TensorFormat; floatReason?: string } {
  if (e.floatRule) return { format: FLOAT, floatReason: floatReason(e) };
  if (e.pinned) return { format: e.formats[0]!, floatReason: undefined };
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
