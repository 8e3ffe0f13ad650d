import { basename, relative } from 'node:path';
import { readTensorF32 } from '../io/safetensors.js';
import { computeMetrics, reduceTo2D, type MetricScores, type RawMetrics } from '../metrics/index.js';
import type { TensorRecord } from '../arch/types.js';
import { DEFAULT_SEED } from '../rng.js';
import {
  classify,
  compositeScore,
  DEFAULT_SWAN_CONFIG,
  isOneD,
  recommendBits,
  validateSwanConfig,
  type Classification,
  type Decision,
  type SwanConfig,
} from '../plan/swan-rules.js';
import { numel } from '../plan/format.js';
import type { FloatDType } from '../io/float.js';
import { measureCandidates, type Candidate, type InputWeighting, type MeasureOptions } from '../plan/candidates.js';
import type { QuantRules } from '../mlx/affine.js';
import { inputWeightsFor } from './input-weights.js';
import { openModel, type ModelSource } from './source.js';

/** The analysis of one tensor: pure evidence, no output format yet. */
export interface TensorAnalysis {
  name: string;
  file: string;
  shape: number[];
  sourceDType: string;
  record: TensorRecord;
  classification: Classification;
  scores: MetricScores;
  raw: RawMetrics | null;
  composite: number;
  decision: Decision;
  /** Measured affine candidates (bytes, relative error) for the budget strategy; [] when not quantizable. */
  candidates: Candidate[];
  seconds: number;
}

export interface AnalyzeOptions {
  seed?: number;
  swan?: SwanConfig;
  dtype?: FloatDType;
  /** Rules of the MLX quantizer whose error is measured (default metal). */
  rules?: QuantRules;
  /** Measure the candidate formats' errors for the budget strategy (default true). */
  measureCandidates?: boolean;
  /** Measure the error of `--rounding search` too (default true). */
  measureSearch?: boolean;
  /** What the measured `--rounding search` minimises across input channels (default norm; src/plan/candidates.ts InputWeighting). */
  weighting?: InputWeighting;
  /**
   * Compute the metrics of protected tensors (embeddings, head, norms) too, as the reference does.
   * Default false: they are 16-bit whatever their scores, and the embedding is the most expensive
   * tensor of a model to score.
   */
  scoreProtected?: boolean;
  /**
   * Skip the randomized SVD and the output-noise probe of a tensor when the cheap metrics already
   * decide its bits under the thresholds (default false: the manifest then has every score).
   */
  skipDecided?: boolean;
  onTensor?: (done: number, total: number, a: TensorAnalysis) => void;
}

export interface ModelAnalysis {
  source: ModelSource;
  seed: number;
  swan: SwanConfig;
  tensors: TensorAnalysis[];
  /**
   * How the candidates were measured (dtype, rules, whether the search error is there); absent when
   * they were not (only the budget strategy and `swan analyze` need them).
   */
  measure?: MeasureOptions;
  seconds: number;
}

const ZERO_SCORES: MetricScores = { svd: 0, kurtosis: 0, output_sensitivity: 0, error_proxy: 0 };

/** Score every tensor of an HF model once, one tensor in memory at a time. */
export function analyzeModel(dir: string, opts: AnalyzeOptions = {}): ModelAnalysis {
  const swan = opts.swan ?? DEFAULT_SWAN_CONFIG;
  validateSwanConfig(swan);
  const seed = opts.seed ?? DEFAULT_SEED;
  const source = openModel(dir, { dtype: opts.dtype });
  const measure: MeasureOptions | undefined =
    (opts.measureCandidates ?? true)
      ? { dtype: source.dtype, rules: opts.rules ?? 'metal', search: opts.measureSearch ?? true, weighting: opts.weighting ?? 'norm' }
      : undefined;
  // Only the search's measurement uses the weights: without it no norm vector is read.
  const colWeights = inputWeightsFor(source, measure?.search ? (measure.weighting ?? 'norm') : 'none');
  const started = performance.now();
  const tensors: TensorAnalysis[] = [];
  for (const { info, record } of source.entries) {
    const t0 = performance.now();
    const cw = colWeights(record, info.shape[info.shape.length - 1] ?? 0);
    const a = analyzeTensor(info.name, info.shape, record, swan, seed, () => readTensorF32(info), measure, opts.scoreProtected, opts.skipDecided, cw);
    a.file = basename(info.file);
    a.sourceDType = info.dtype;
    a.seconds = (performance.now() - t0) / 1000;
    tensors.push(a);
    opts.onTensor?.(tensors.length, source.entries.length, a);
  }
  return { source, seed, swan, tensors, measure, seconds: (performance.now() - started) / 1000 };
}

/**
 * SWAN's per-tensor rules (reference §1.2–1.4) with the paper's fix: 1-D tensors and tensors under
 * min_tensor_params stay 16-bit (the reference code gives tiny 2-D tensors 2-bit, a known bug).
 * Tensors the MLX model drops (a tied lm_head) are not scored.
 */
export function analyzeTensor(
  name: string,
  shape: number[],
  record: TensorRecord,
  swan: SwanConfig,
  seed: number,
  load: () => Float32Array,
  measure?: MeasureOptions,
  scoreProtected = false,
  skipDecided = false,
  colWeights?: ArrayLike<number>,
): TensorAnalysis {
  const base = { name, file: '', shape, sourceDType: '', record, raw: null, candidates: [] as Candidate[], seconds: 0 };
  if (record.mlxName === null) {
    return { ...base, classification: classify(name, swan), scores: ZERO_SCORES, composite: 0, decision: { bits: 16, reason: 'dropped_by_mlx' } };
  }
  // One read of the weights serves the metrics and the candidate measurements.
  let data: Float32Array | undefined;
  const weights = () => (data ??= load());
  const candidates = () => (measure && record.quantizable ? measureCandidates(record, shape, weights(), measure, colWeights) : []);
  if (isOneD(shape)) {
    return { ...base, classification: 'protected', scores: ZERO_SCORES, composite: 0, decision: { bits: 16, reason: '1d_tensor' }, candidates: candidates() };
  }
  const classification = classify(name, swan);
  if (numel(shape) < swan.minTensorParams) {
    return { ...base, classification, scores: ZERO_SCORES, composite: 0, decision: { bits: 16, reason: 'small_tensor' }, candidates: candidates() };
  }
  if (classification === 'protected' && !scoreProtected) {
    return { ...base, classification, scores: ZERO_SCORES, composite: 0, decision: recommendBits(0, classification, swan), candidates: candidates() };
  }
  const matrix = reduceTo2D(shape, weights());
  const decided = skipDecided ? (cheap: { kurtosis: number; error_proxy: number }) => !decidedWithout(cheap, classification, swan) : undefined;
  const { scores, raw, skipped } = computeMetrics(matrix, seed, name, decided);
  if (skipped) {
    // The decision holds for every value the two skipped scores could take (each lies in [0, 1]).
    const { lo, hi } = compositeRange(scores, swan);
    const decision = recommendBits(lo, classification, swan);
    return { ...base, classification, scores, raw, composite: NaN, decision: { ...decision, reason: boundedReason(decision, lo, hi) }, candidates: candidates() };
  }
  const composite = compositeScore(scores, swan.weights);
  // After the metrics: measuring may cast the weights to the model dtype in place.
  return { ...base, classification, scores, raw, composite, decision: recommendBits(composite, classification, swan), candidates: candidates() };
}

/**
 * True when SWAN's decision is the same for every composite the skipped scores (svd and output
 * sensitivity, each in [0, 1]) could give: the decision is a monotone step function of the
 * composite, so equal decisions at both ends of the interval mean equal decisions inside it.
 */
export function decidedWithout(cheap: { kurtosis: number; error_proxy: number }, cls: Classification, swan: SwanConfig): boolean {
  const { lo, hi } = compositeRange(cheap, swan);
  return recommendBits(lo, cls, swan).bits === recommendBits(hi, cls, swan).bits;
}

/** The composite's range over every value of the skipped scores (svd and output sensitivity, each in [0, 1]). */
function compositeRange(cheap: { kurtosis: number; error_proxy: number }, swan: SwanConfig): { lo: number; hi: number } {
  const lo = swan.weights.kurtosis * cheap.kurtosis + swan.weights.error_proxy * cheap.error_proxy;
  return { lo, hi: lo + swan.weights.svd + swan.weights.output_sensitivity };
}

function boundedReason(d: Decision, lo: number, hi: number): string {
  return `${d.reason === 'default' ? 'default' : d.reason.replace(/^composite_score=[0-9.]+/, 'composite_score')} (composite in [${lo.toFixed(3)}, ${hi.toFixed(3)}] whatever svd and output_sensitivity are; not computed)`;
}

/** Model path as recorded in outputs: relative to the working directory, never an absolute home path. */
export function displayPath(dir: string): string {
  const rel = relative(process.cwd(), dir);
  return rel && !rel.startsWith('..') ? rel : basename(dir);
}
