/**
 * The manifest: every score and decision, following the reference SWAN tool's schema (its
 * manifest.json: per-shard tensors with shape, dtype, classification, scores, composite_score and
 * decision {bits, reason}; the config; a summary) so its consumers can read it, plus what swan
 * adds: raw metric values, the format actually written, why, and its exact bytes, candidate
 * measurements, and true output sizes in the summary.
 */
import type { QuantMode } from '../format.js';
import type { MetricScores, RawMetrics } from '../metrics/index.js';
import type { Classification, Decision, SwanConfig } from '../plan/swan-rules.js';

/** True when a file's first bytes are those of a manifest swan wrote (its first key is swan_version). */
export function isSwanManifestHead(head: string): boolean {
  return /^\{\s*"swan_version":/.test(head);
}

/** The manifest's file name inside an MLX directory swan writes. */
export const MANIFEST_FILE = 'swan-manifest.json';

/** Output format of one tensor as stored in the manifest (MLX's own spelling). */
export type ManifestFormat =
  | { bits: number; group_size: number; mode: QuantMode }
  | { float: string }
  | { dropped: string };

export interface ManifestTensor {
  shape: number[];
  dtype: string;
  num_params: number;
  classification: Classification;
  scores: MetricScores;
  composite_score: number;
  decision: Decision;
  /** swan: raw metric values before normalisation (null when the tensor was not scored). */
  raw_metrics: RawMetrics | null;
  /** swan: the MLX name, role and layer. */
  mlx_name: string | null;
  role: string;
  layer: number | null;
  /** swan: what is written, why (the eligibility rule or the strategy's reason), and its exact bytes (weight + scales + biases). */
  format: ManifestFormat;
  reason?: string;
  bytes: number;
  /**
   * swan: every affine format MLX accepts for this tensor, with exact bytes and the measured
   * relative error ‖W − deq(Q(W))‖²/‖W‖² (RTN, and with --rounding search). Float is always a
   * candidate too (error 0). Absent for tensors MLX cannot quantize.
   */
  candidates?: ManifestCandidate[];
  /** swan: weight of this tensor in the damage model (damage = rel_error × importance). */
  importance?: number;
  /** swan, budget plans: expected damage of the written format. */
  damage?: number;
  /**
   * swan, only with --allow-nonfinite and only when non-zero: the tensor's NaN, ±Inf and values
   * beyond the range of the manifest's dtype (±Inf once cast), counted when it was read.
   */
  nonfinite?: ManifestNonFinite;
  /**
   * swan, `--rounding gptq`: whether GPTQ's codes were written (else the search's), and the output
   * error tr(E H Eᵀ) of each under the layer's input covariance H (src/mlx/gptq.ts).
   */
  gptq?: ManifestGptq;
  /**
   * swan, a stacked MoE tensor (switch_mlp): each expert's source tensor with its own scores; the
   * tensor's composite_score is their upper quartile (docs/architectures.md).
   */
  experts?: ManifestExpert[];
}

export interface ManifestGptq {
  kept: boolean;
  output_error: number;
  search_output_error: number;
}

export interface ManifestExpert {
  name: string;
  scores: MetricScores;
  composite_score: number;
}

export interface ManifestNonFinite {
  nan: number;
  inf: number;
  overflow: number;
}

export interface ManifestCandidate {
  bits: number;
  group_size: number;
  /** Absent: affine (manifests before the fp modes). */
  mode?: QuantMode;
  bytes: number;
  rel_error: number;
  rel_error_search?: number;
}

export interface BitsBucket {
  params: number;
  percentage: number;
}

export interface ManifestSummary {
  total_params: number;
  bits_distribution: Record<string, BitsBucket>;
  estimated_size_gb: number;
  average_bits: number;
  /** Kept for schema compatibility; null so that manifests are byte-identical run to run. */
  analysis_time_seconds: number | null;
  tensor_count: number;
  /** swan: the real output. */
  output_bytes: number;
  output_params: number;
  true_bpw: number;
  nominal_average_bits: number;
  format_distribution: Record<string, { tensors: number; params: number; bytes: number }>;
  /** swan: the per-tensor `nonfinite` counts summed, and how many tensors have any; absent when none. */
  nonfinite?: ManifestNonFinite & { tensors: number };
  /** swan, `--rounding gptq`: tensors rounded under a covariance, how many kept GPTQ's codes, and the per-tensor `gptq` errors summed (of what is written, and of the search). */
  gptq?: { tensors: number; kept: number; output_error: number; search_output_error: number };
}

export interface Manifest {
  swan_version: string;
  model: string;
  model_type: string;
  seed: number;
  dtype: string;
  q_group_size: number;
  config: {
    sensitivity_threshold_2bit: number;
    sensitivity_threshold_8bit: number;
    sensitivity_threshold_16bit: number;
    default_bits: number;
    metric_weights: MetricScores;
    svd_rank: number;
    min_tensor_params: number;
    protected_patterns: string[];
    sensitive_patterns: string[];
  };
  total_layers: number;
  total_tensors: number;
  /** swan: how the candidates were measured (re-planning needs the same dtype). */
  measurement?: { dtype: string; mlx_rules: string; rounding_search: boolean; input_weighting?: string };
  /** swan: the plan written with this manifest. */
  plan?: {
    strategy: string;
    rounding: string;
    input_weighting?: string;
    /** swan: the `--imatrix` file (its name) whose activation statistics weighed the rounding search. */
    imatrix?: string;
    target_bytes?: number;
    expected_damage?: number;
    damage_knobs?: Record<string, unknown>;
    /** Budget plans: where the target came from ('user', or 'thresholds': the default size). */
    target_from?: string;
    /** Budget plans: the damage model applied to uniform 4-bit g64 (mlx_lm.convert -q), the yardstick of expected_damage. */
    reference?: { format: string; bytes: number; expected_damage: number };
    /** false in a `swan analyze` manifest: the formats are a plan, nothing was written with them. */
    written?: boolean;
  };
  shards: Record<string, { file: string; tensors: Record<string, ManifestTensor> }>;
  summary: ManifestSummary;
}

export function manifestConfig(c: SwanConfig): Manifest['config'] {
  return {
    sensitivity_threshold_2bit: c.threshold2,
    sensitivity_threshold_8bit: c.threshold8,
    sensitivity_threshold_16bit: c.threshold16,
    default_bits: c.defaultBits,
    metric_weights: { ...c.weights },
    svd_rank: c.svdRank,
    min_tensor_params: c.minTensorParams,
    protected_patterns: [...c.protectedPatterns],
    sensitive_patterns: [...c.sensitivePatterns],
  };
}

/** All tensor entries of a manifest, flattened across shards. */
export function manifestTensors(m: { shards: Manifest['shards'] }): Map<string, ManifestTensor> {
  const out = new Map<string, ManifestTensor>();
  for (const shard of Object.values(m.shards)) for (const [name, t] of Object.entries(shard.tensors)) out.set(name, t);
  return out;
}
