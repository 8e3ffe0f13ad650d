import type { MetricScores } from '../metrics/index.js';

/** SWAN's knobs, defaults from the paper / reference QuantConfig v2 (swan-reference.md §1.4–1.5). */
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
