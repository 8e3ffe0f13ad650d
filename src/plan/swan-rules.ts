/**
 * SWAN's decision as published: the composite of the four scores against three thresholds, with
 * protected and sensitive name patterns, and the paper's float rules for 1-D and tiny tensors. A
 * pure function of the evidence (src/measure/analyze.ts); the thresholds strategy turns the
 * decision into a format among the eligible ones (thresholds.ts).
 */
import { numel } from '../format.js';
import type { MetricScores } from '../metrics/index.js';

/** SWAN's knobs; defaults are the paper's and the reference tool's (its QuantConfig v2). */
export interface SwanConfig {
  threshold2: number;
  threshold8: number;
  threshold16: number;
  weights: MetricScores;
  svdRank: number;
  minTensorParams: number;
  protectedPatterns: string[];
  sensitivePatterns: string[];
  defaultBits: number;
}

export const DEFAULT_SWAN_CONFIG: SwanConfig = {
  threshold2: 0.1,
  threshold8: 0.65,
  threshold16: 0.9,
  weights: { svd: 0.2, kurtosis: 0.45, output_sensitivity: 0.15, error_proxy: 0.2 },
  svdRank: 256,
  minTensorParams: 1024,
  protectedPatterns: [
    'embed_tokens',
    'lm_head',
    'layernorm',
    'layer_norm',
    'norm.weight',
    'router.weight',
    'vision_model',
    'multi_modal_projector',
    'positional_embedding',
    'class_embedding',
    'patch_embedding',
  ],
  sensitivePatterns: [],
  defaultBits: 4,
};

export type Classification = 'protected' | 'sensitive' | 'default';

export function validateSwanConfig(c: SwanConfig): void {
  if (!(c.threshold2 >= 0 && c.threshold2 < c.threshold8 && c.threshold8 < c.threshold16 && c.threshold16 <= 1)) {
    throw new Error(`thresholds must satisfy 0 <= t2 < t8 < t16 <= 1 (got ${c.threshold2}, ${c.threshold8}, ${c.threshold16})`);
  }
  const sum = Object.values(c.weights).reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-6) throw new Error(`metric weights must sum to 1 (got ${sum})`);
}

/** True when one of the patterns is a case-insensitive substring of the name. */
export function matchesAny(name: string, patterns: readonly string[] | undefined): boolean {
  const n = name.toLowerCase();
  return (patterns ?? []).some((p) => n.includes(p.toLowerCase()));
}

/** Case-insensitive substring match, protected before sensitive (reference classify_tensor). */
export function classify(name: string, c: SwanConfig): Classification {
  if (matchesAny(name, c.protectedPatterns)) return 'protected';
  if (matchesAny(name, c.sensitivePatterns)) return 'sensitive';
  return 'default';
}

/** The reference's "1-D" test: ndim ≤ 1, or 2-D with a dimension of 1. */
export function isOneD(shape: number[]): boolean {
  return shape.length <= 1 || (shape.length === 2 && Math.min(shape[0]!, shape[1]!) === 1);
}

export function compositeScore(scores: MetricScores, weights: MetricScores): number {
  return (
    weights.svd * scores.svd +
    weights.kurtosis * scores.kurtosis +
    weights.output_sensitivity * scores.output_sensitivity +
    weights.error_proxy * scores.error_proxy
  );
}

export interface Decision {
  bits: 2 | 4 | 8 | 16;
  reason: string;
}

/**
 * The paper's rules that keep a tensor 16-bit whatever its scores: 1-D tensors, tensors under
 * min_tensor_params, protected names. (The reference code gives tiny 2-D tensors 2-bit; the paper
 * keeps them 16-bit, and so does swan.) Null when the scores decide.
 */
export function swanFloatRule(name: string, shape: number[], c: SwanConfig): '1d_tensor' | 'small_tensor' | 'protected_pattern' | null {
  if (isOneD(shape)) return '1d_tensor';
  if (numel(shape) < c.minTensorParams) return 'small_tensor';
  if (classify(name, c) === 'protected') return 'protected_pattern';
  return null;
}

/** recommend_bits in the reference's order; comparisons are inclusive. */
export function recommendBits(s: number, cls: Classification, c: SwanConfig): Decision {
  const f = s.toFixed(3);
  if (cls === 'protected') return { bits: 16, reason: 'protected_pattern' };
  if (s >= c.threshold16) return { bits: 16, reason: `composite_score=${f} >= 16bit_threshold` };
  if (cls === 'sensitive') return { bits: 8, reason: 'sensitive_pattern' };
  if (s >= c.threshold8) return { bits: 8, reason: `composite_score=${f} >= 8bit_threshold` };
  if (s <= c.threshold2) return { bits: 2, reason: `composite_score=${f} <= 2bit_threshold` };
  return { bits: c.defaultBits as 4, reason: 'default' };
}

/** What the SWAN decision needs to know about one tensor (a TensorAnalysis is one). */
export interface SwanEvidence {
  classification: Classification;
  composite: number;
  /** Set when the tensor was not scored: the rule that decided without scores. */
  unscored?: 'dropped_by_mlx' | '1d_tensor' | 'small_tensor' | 'protected_pattern';
  /** Set when svd and output sensitivity were skipped: the composite's range over their values. */
  compositeRange?: { lo: number; hi: number };
}

/** SWAN's decision for one analysed tensor. */
export function swanDecision(a: SwanEvidence, c: SwanConfig): Decision {
  if (a.unscored) return { bits: 16, reason: a.unscored };
  if (a.compositeRange) {
    // The decision holds for every value the two skipped scores could take (each lies in [0, 1]).
    const { lo, hi } = a.compositeRange;
    const d = recommendBits(lo, a.classification, c);
    const why = d.reason === 'default' ? 'default' : d.reason.replace(/^composite_score=[0-9.]+/, 'composite_score');
    return { ...d, reason: `${why} (composite in [${lo.toFixed(3)}, ${hi.toFixed(3)}] whatever svd and output_sensitivity are; not computed)` };
  }
  return recommendBits(a.composite, a.classification, c);
}

/**
 * True when SWAN's decision is the same for every composite the skipped scores (svd and output
 * sensitivity, each in [0, 1]) could give: the decision is a monotone step function of the
 * composite, so equal decisions at both ends of the interval mean equal decisions inside it.
 */
export function decidedWithout(cheap: { kurtosis: number; error_proxy: number }, cls: Classification, c: SwanConfig): boolean {
  const { lo, hi } = compositeRange(cheap, c);
  return recommendBits(lo, cls, c).bits === recommendBits(hi, cls, c).bits;
}

/** The composite's range over every value of the skipped scores (svd and output sensitivity, each in [0, 1]). */
export function compositeRange(cheap: { kurtosis: number; error_proxy: number }, c: SwanConfig): { lo: number; hi: number } {
  const lo = c.weights.kurtosis * cheap.kurtosis + c.weights.error_proxy * cheap.error_proxy;
  return { lo, hi: lo + c.weights.svd + c.weights.output_sensitivity };
}
